#!/usr/bin/env bash
# The locking document names only what exists.  Every name in `code` in
# doc/locking.md, and every lock of its tree (the first fenced block: the
# first word of each line), must be an identifier of the code in src/, with
# comments stripped (gcc's preprocessor, which expands nothing).  Spans that
# are paths (a '/' or a file suffix) are not names.  FAULTLINE_X is an
# option: "x" must be in src/options.c's table.
#
#   scripts/check-lockdoc.sh [ROOT]     check the tree at ROOT (default: here)
#   scripts/check-lockdoc.sh --self-test
#       rename a lock in a copy of the tree and expect the check to fail
#       naming it; and expect the unchanged copy to pass.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = "--self-test" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/doc"
	cp -r "$here/src" "$tmp/src"
	cp "$here/doc/locking.md" "$tmp/doc/"
	"$0" "$tmp" >"$tmp/ok.log" 2>&1 || {
		cat "$tmp/ok.log" >&2
		echo "check-lockdoc self-test: the unchanged copy fails" >&2
		exit 1
	}
	# A lock renamed in the code, and the document left behind.
	sed -i 's/\breclaim_lock\b/evict_lock/g' "$tmp"/src/*.c "$tmp"/src/*.h
	if "$0" "$tmp" >"$tmp/bad.log" 2>&1; then
		echo "check-lockdoc self-test: a renamed lock (reclaim_lock) was not caught" >&2
		exit 1
	fi
	grep -q 'reclaim_lock' "$tmp/bad.log" || {
		cat "$tmp/bad.log" >&2
		echo "check-lockdoc self-test: the failure does not name reclaim_lock" >&2
		exit 1
	}
	echo "check-lockdoc self-test: a renamed lock fails the check: $(grep -m1 reclaim_lock "$tmp/bad.log")"
	exit 0
fi

root=${1:-$here}
doc=$root/doc/locking.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The words of the code: comments stripped, strings kept.
for f in "$root"/src/*.c "$root"/src/*.h; do
	gcc -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null
done | grep -oE '[A-Za-z_][A-Za-z0-9_]*' | sort -u >"$tmp/code"
[ -s "$tmp/code" ] || { echo "check-lockdoc: no code read under $root/src" >&2; exit 1; }

# The names of the document: the tree's locks, and every `span` outside
# fenced blocks.
awk '
	/^```/ { fence++; next }
	fence == 1 && NF { print $1; next }
	fence % 2 == 0 {
		line = $0
		while (match(line, /`[^`]+`/)) {
			print substr(line, RSTART + 1, RLENGTH - 2)
			line = substr(line, RSTART + RLENGTH)
		}
	}' "$doc" | grep -vE '/|\.(c|h|md|sh|supp)$' >"$tmp/spans"

missing=0
while IFS= read -r span; do
	for w in $(printf '%s\n' "$span" | grep -oE '[A-Za-z_][A-Za-z0-9_]*'); do
		case $w in
		FAULTLINE_*)
			opt=$(printf '%s' "${w#FAULTLINE_}" | tr 'A-Z' 'a-z')
			grep -q "\"$opt\"" "$root/src/options.c" && continue ;;
		*)
			grep -qxF "$w" "$tmp/code" && continue ;;
		esac
		echo "doc/locking.md names \`$w\` (in \`$span\`), which src/ does not have"
		missing=$((missing + 1))
	done
done <"$tmp/spans"
if [ "$missing" -gt 0 ]; then
	echo "check-lockdoc: $missing name(s) of doc/locking.md not in src/: rename them in the document, or say why they are gone" >&2
	exit 1
fi
echo "check-lockdoc: $(sort -u "$tmp/spans" | wc -l) names of doc/locking.md found in src/"
