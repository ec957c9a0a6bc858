#!/usr/bin/env bash
# tests/install.sh BUILD: the installed library as a user meets it. `make install PREFIX=<scratch>`
# from the build in BUILD (default build) must install libcm.a, libcm.so.VERSION with its soname
# links, every public header and lib/pkgconfig/cm.pc; examples/train_sample.c must compile with
# `pkg-config --cflags --libs cm` against the shared library and, with `pkg-config --static`,
# against libcm.a, and both programs must run and print a finite W1 and floor.
# Usage: tests/install.sh [BUILD]     Ends with "install: N passed, N failed".
source "$(dirname "$0")/expect.sh"   # $work, counters, expect, check, exists
cd "$(dirname "$0")/.."
build=${1:-build}
cc=${CC:-cc}
prefix="$work/prefix"
version=$(sed -n 's/^#define CM_VERSION "\(.*\)"/\1/p' include/cm/version.h)

check "make install PREFIX=$prefix" \
  'make -s BUILD="$build" install PREFIX="$prefix" > "$work/install.log" 2>&1 || { tail -20 "$work/install.log"; false; }'
exists "$prefix/lib/libcm.a"
exists "$prefix/lib/libcm.so.$version"
check "libcm.so.0 -> libcm.so.$version" '[ "$(readlink "$prefix/lib/libcm.so.0")" = "libcm.so.$version" ]'
check "libcm.so -> libcm.so.0" '[ "$(readlink "$prefix/lib/libcm.so")" = libcm.so.0 ]'
check "soname libcm.so.0" 'readelf -d "$prefix/lib/libcm.so.$version" | grep -q "SONAME.*\[libcm.so.0\]"'
# every public header but the MPI one (installed by `make MPI=1 install` only)
headers_installed() {
  local h
  for h in include/cm/*.h; do
    [ "$(basename "$h")" = comm_mpi.h ] && continue
    cmp -s "$h" "$prefix/include/cm/$(basename "$h")" || return 1
  done
}
check "every public header installed" headers_installed
exists "$prefix/lib/pkgconfig/cm.pc"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
expect 0 "^$version\$" -- pkg-config --modversion cm
libdir=$(pkg-config --variable=libdir cm)
# shared: the documented command line, with an rpath to the scratch prefix
check "example links against libcm.so" \
  '$cc -std=c11 -Wall -Wextra -Werror -o "$work/shared" examples/train_sample.c $(pkg-config --cflags --libs cm) -Wl,-rpath,"$libdir" 2> "$work/shared.log" || { cat "$work/shared.log"; false; }'
check "the shared example loads libcm.so.0 from the prefix" 'ldd "$work/shared" | grep -q "libcm.so.0 => $libdir/libcm.so.0"'
expect 0 "^steps 400  W1 [0-9]+\.[0-9]+  floor [0-9]+\.[0-9]+  ratio [0-9]+\.[0-9]+$" -- "$work/shared"
# static: libcm.a in place of -lcm, and the private dependencies of `pkg-config --static`
check "example links against libcm.a" \
  '$cc -std=c11 -o "$work/static" examples/train_sample.c $(pkg-config --cflags cm) $(pkg-config --static --libs cm | sed "s/-lcm /-l:libcm.a /") 2> "$work/static.log" || { cat "$work/static.log"; false; }'
check "the static example needs no libcm.so" '[ -x "$work/static" ] && ! ldd "$work/static" | grep -q libcm'
expect 0 "^steps 50  W1 [0-9]+\.[0-9]+  floor [0-9]+\.[0-9]+" -- "$work/static" 50
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
