#!/usr/bin/env bash
# Install what faultline needs to build and test, on Debian.  As root it
# installs the missing packages itself (apt-get update first); otherwise it
# prints the exact command to run and fails.
set -eu
# libhiredis-dev, redis-*: the far-memory tier's Redis Cluster client and its tests;
# liblz4-dev, liblzo2-dev, libzstd-dev: the compressed tier's compressors; libxxhash-dev,
# libsodium-dev, libblkid-dev: the store's checksums, encryption and signature checks;
# e2fsprogs, util-linux, mount: test_store_blockdev's loop device and file system;
# libjemalloc-dev: faultline run's heap; xz-utils, sqlite3, python3: the programs of its
# acceptance test (test_run); gdb: the stacks of a test that hangs (tests/run.sh).
pkgs=(make gcc clang clang-format libclang-rt-dev liburing-dev liburcu-dev pkg-config gnuplot-nox
	libhiredis-dev redis-server redis-tools liblz4-dev liblzo2-dev libzstd-dev libxxhash-dev
	libsodium-dev libblkid-dev e2fsprogs util-linux mount libjemalloc-dev xz-utils sqlite3
	python3 binutils gdb)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
else
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
