#!/bin/sh
# Builds the libotr test peer: tests/peers/otr/build.sh OUTPUT (from any directory).
# Needs gcc and Debian's libotr5-dev (libotr 4.1), which brings libgcrypt20-dev.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT" >&2
    exit 2
fi
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
exec gcc -std=c11 -O2 -Wall -Wextra -Werror -o "$1" "$here/peer.c" -lotr -lgcrypt -lgpg-error
