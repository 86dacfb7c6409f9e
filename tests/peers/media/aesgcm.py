#!/usr/bin/env python3
"""XEP-0454 (OMEMO Media Sharing) reference for Starling's tests, on the Python
`cryptography` package's AES-GCM: an independent implementation to check ours against.

    aesgcm.py seal IN OUT          encrypts IN with a fresh 12-byte IV and 32-byte key,
                                   writes ciphertext+tag to OUT, prints hex(IV + key)
    aesgcm.py open FRAGMENT IN OUT decrypts IN (ciphertext+tag) with the IV and key in
                                   FRAGMENT (12- or 16-byte IV); exit 1 if the tag fails
"""
import os
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "seal":
        iv, key = os.urandom(12), AESGCM.generate_key(bit_length=256)
        with open(sys.argv[2], "rb") as f:
            plain = f.read()
        with open(sys.argv[3], "wb") as f:
            f.write(AESGCM(key).encrypt(iv, plain, None))
        print((iv + key).hex())
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "open":
        raw = bytes.fromhex(sys.argv[2])
        iv, key = raw[:-32], raw[-32:]
        with open(sys.argv[3], "rb") as f:
            sealed = f.read()
        try:
            plain = AESGCM(key).decrypt(iv, sealed, None)
        except InvalidTag:
            print("tag mismatch", file=sys.stderr)
            return 1
        with open(sys.argv[4], "wb") as f:
            f.write(plain)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
