#!/usr/bin/env bash
# The library as a user gets it: the shared library laid out as an
# installed one (file, soname link, linker link), exporting exactly the
# functions of the public header; the README's example built against the
# build tree with -L... -lfaultline and run; then installed under a
# temporary prefix and built with pkg-config, shared and static.
#
#   scripts/check-packaging.sh BUILD_DIR
set -eu
b=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "check-packaging: $*" >&2
	exit 1
}

version=$(sed -n 's/^#define FL_VERSION_STRING "\(.*\)"/\1/p' include/faultline.h)
major=${version%%.*}
[ -f "$b/libfaultline.so.$version" ] || fail "$b/libfaultline.so.$version is missing"
for l in "libfaultline.so.$major" libfaultline.so; do
	[ "$(readlink "$b/$l")" = "libfaultline.so.$version" ] ||
		fail "$b/$l is not a link to libfaultline.so.$version"
done
soname=$(objdump -p "$b/libfaultline.so.$version" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libfaultline.so.$major" ] || fail "soname is '$soname', not libfaultline.so.$major"

# Exported: the header's functions, no more, no less.
sed -n 's/^[a-z].*[ *]\(fl_[a-z_]*\)(.*/\1/p' include/faultline.h | sort -u >"$tmp/header"
nm -D --defined-only "$b/libfaultline.so.$version" | awk '$2 == "T" {print $3}' |
	sed 's/@.*//' | sort -u >"$tmp/exported"
if ! diff -u "$tmp/header" "$tmp/exported" >"$tmp/diff"; then
	cat "$tmp/diff" >&2
	fail "exported symbols differ from the public header's functions (- header, + library)"
fi

# The README's example, as a user builds it.
awk '/^```c$/ {on = 1; next} /^```$/ && on {exit} on' README.md >"$tmp/example.c"
[ -s "$tmp/example.c" ] || fail "no C example in README.md"
cc -O2 -o "$tmp/shared" "$tmp/example.c" -Iinclude -L"$b" -lfaultline ||
	fail "the README example does not build with -L$b -lfaultline"
LD_LIBRARY_PATH="$b" "$tmp/shared" >"$tmp/out" 2>&1 || {
	cat "$tmp/out" >&2
	fail "the README example, linked with -lfaultline, fails"
}
grep -q '\[faultline\]' "$tmp/out" || fail "the README example printed no VMA"

# Installed, then found with pkg-config.
make -s install B="$b" PREFIX="$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -O2 -o "$tmp/pc-shared" "$tmp/example.c" $(pkg-config --cflags --libs faultline) ||
	fail "the example does not build with pkg-config"
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/pc-shared" >/dev/null 2>&1 ||
	fail "the example built with pkg-config fails"
cc -O2 -static-libgcc -o "$tmp/pc-static" "$tmp/example.c" \
	$(pkg-config --cflags faultline) "$tmp/prefix/lib/libfaultline.a" \
	$(pkg-config --static --libs-only-l faultline | sed 's/-lfaultline//') ||
	fail "the example does not link statically with pkg-config --static"
"$tmp/pc-static" >/dev/null 2>&1 || fail "the statically linked example fails"
echo "check-packaging: libfaultline.so.$version ($soname), $(wc -l <"$tmp/header") exports, example shared/pkg-config/static: ok"
