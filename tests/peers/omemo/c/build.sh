#!/bin/sh
# Build the libomemo-c OMEMO oracle (test-only tool, see oracle.c).
#
#   tests/peers/omemo/c/build.sh OUTPUT_PATH
#
# Works from any working directory. Needs gcc, libomemo-c-dev and libssl-dev
# (Debian: apt-get install gcc pkg-config libomemo-c-dev libssl-dev).
# libomemo-c is GPL-3.0: it is linked only into this stand-alone test binary.
set -eu

if [ "$#" -ne 1 ]; then
    echo "usage: $0 OUTPUT_PATH" >&2
    exit 2
fi
out=$1
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)

CC=${CC:-gcc}
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libomemo-c; then
    # -isystem: warnings from the library's own headers are not ours to fix.
    omemo_cflags=$(pkg-config --cflags-only-I libomemo-c | sed 's/-I/-isystem /g')
    omemo_cflags="$omemo_cflags $(pkg-config --cflags-only-other libomemo-c)"
    omemo_libs=$(pkg-config --libs libomemo-c)
else
    omemo_cflags="-isystem /usr/include/omemo"
    omemo_libs="-lomemo-c"
fi
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libcrypto; then
    crypto_cflags=$(pkg-config --cflags libcrypto)
    crypto_libs=$(pkg-config --libs libcrypto)
else
    crypto_cflags=""
    crypto_libs="-lcrypto"
fi

mkdir -p "$(dirname -- "$out")"
# shellcheck disable=SC2086  # CC and the flag variables are word lists on purpose
exec $CC -std=gnu11 -O1 -Wall -Wextra -Werror \
    -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED \
    $omemo_cflags $crypto_cflags \
    -o "$out" "$here/oracle.c" \
    $omemo_libs $crypto_libs
