#!/usr/bin/env python3
"""Self-test of oracle.py: two oracle processes per namespace talk to each other.

Drives the oracles through PROTOCOL.md exactly as the Rust interop test does
(only requests and responses on the pipes, bytes passed through unchanged) and
checks that every side decrypts byte for byte what the other side encrypted:

* setup of both devices and the sizes of every bundle field,
* A -> B key exchange from B's bundle (kex=1), repeated kex=1 messages while A
  has not heard from B, out-of-order delivery of those,
* B replies (kex=0); once A has decrypted the reply A's messages are kex=0,
* several messages each way, skipped messages delivered later, also across a
  Diffie-Hellman ratchet step,
* replays, tampering, a consumed one-time pre-key and bad requests give one
  `err` line each and the process keeps working,
* a new key exchange replaces an existing session,
* seal/open with real plaintext, with the payload key material carried through
  the ratchet (the full message path), for both namespaces.

Usage: python selftest.py   (with the venv's python; exits non-zero on any
mismatch and ends with an "N passed, N failed" line).
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "oracle.py")

# (ik, spk, spk_sig, pre-key, key material) sizes per PROTOCOL.md's table
SIZES = {
    "oldmemo": dict(ik=33, spk=33, spk_sig=64, pk=33, km=32),
    "twomemo": dict(ik=32, spk=32, spk_sig=64, pk=32, km=48),
}


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class OracleError(Exception):
    pass


class Oracle:
    """One oracle child process, spoken to over the line protocol."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, ORACLE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1,
        )

    def raw(self, line: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        response = self.proc.stdout.readline()
        if not response.endswith("\n"):
            raise OracleError(f"{self.label}: oracle died on {line.split(' ')[0]!r}")
        return response[:-1]

    def request(self, line: str) -> Dict[str, str]:
        response = self.raw(line)
        if response.startswith("err "):
            raise OracleError(f"{self.label}: {response}")
        if response != "ok" and not response.startswith("ok "):
            raise OracleError(f"{self.label}: malformed response {response!r}")
        fields = {}
        for token in response.split(" ")[1:]:
            name, _, value = token.partition("=")
            fields[name] = value
        return fields

    def expect_err(self, line: str) -> str:
        response = self.raw(line)
        if not response.startswith("err "):
            raise OracleError(f"{self.label}: expected err, got {response[:80]!r}")
        return response

    def close(self) -> int:
        assert self.proc.stdin
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        return self.proc.wait(timeout=30)


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"  ok    {name}")
        else:
            self.failed += 1
            print(f"  FAIL  {name} {detail}")


class Device:
    def __init__(self, ns: str, device_id: int, prekeys: int) -> None:
        self.ns = ns
        self.device_id = device_id
        self.oracle = Oracle(f"{ns}/{device_id}")
        self.bundle = self.oracle.request(f"setup {ns} {device_id} {prekeys}")
        self.prekeys = [(int(i), pk) for i, _, pk in
                        (entry.partition(":") for entry in self.bundle["prekeys"].split(","))]

    def bundle_args(self, prekey_index: int) -> str:
        pk_id, pk = self.prekeys[prekey_index]
        b = self.bundle
        return f"{b['ik']} {b['spk_id']} {b['spk']} {b['spk_sig']} {pk_id} {pk}"


def run_namespace(ns: str, r: Results) -> None:
    print(f"[{ns}]")
    size = SIZES[ns]
    a = Device(ns, 1001, 5)
    b = Device(ns, 2002, 5)

    def km() -> bytes:
        return secrets.token_bytes(size["km"])

    def send(src: Device, dst: Device, material: bytes, bundle: Optional[int] = None) -> Dict[str, str]:
        line = f"encrypt {dst.device_id} {b64e(material)}"
        if bundle is not None:
            line += " " + dst.bundle_args(bundle)
        return src.oracle.request(line)

    def recv(dst: Device, src: Device, msg: Dict[str, str]) -> bytes:
        resp = dst.oracle.request(f"decrypt {src.device_id} {msg['kex']} {msg['data']}")
        return b64d(resp["key_material"])

    def exchange(name: str, src: Device, dst: Device, material: bytes, msg: Dict[str, str]) -> None:
        got = recv(dst, src, msg)
        r.check(name, got == material, f"got {got.hex()} want {material.hex()}")

    # --- setup ------------------------------------------------------------
    for dev in (a, b):
        bun = dev.bundle
        sizes_ok = (len(b64d(bun["ik"])) == size["ik"] and len(b64d(bun["spk"])) == size["spk"]
                    and len(b64d(bun["spk_sig"])) == size["spk_sig"]
                    and len(dev.prekeys) == 5
                    and all(len(b64d(pk)) == size["pk"] for _, pk in dev.prekeys))
        r.check(f"setup {dev.device_id}: field sizes", sizes_ok, str(bun)[:200])
        if ns == "oldmemo":
            r.check(f"setup {dev.device_id}: 0x05 key prefixes",
                    all(b64d(k)[0] == 0x05 for k in [bun["ik"], bun["spk"]] + [pk for _, pk in dev.prekeys]))
        r.check(f"setup {dev.device_id}: distinct pre-key ids",
                len({i for i, _ in dev.prekeys}) == 5)

    # --- A -> B key exchange, repeated kex, out of order ------------------
    k1, k2, k3 = km(), km(), km()
    m1 = send(a, b, k1, bundle=0)
    m2 = send(a, b, k2)
    m3 = send(a, b, k3)
    r.check("A->B first message is kex=1", m1["kex"] == "1")
    r.check("A->B unanswered follow-ups stay kex=1", m2["kex"] == "1" and m3["kex"] == "1")
    check_key_exchange(ns, r, m1, a, b)
    exchange("B decrypts kex m1", a, b, k1, m1)
    exchange("B decrypts kex m3 before m2 (skip)", a, b, k3, m3)
    exchange("B decrypts skipped kex m2 late", a, b, k2, m2)
    r.check("replay of m1 is refused", b.oracle.expect_err(
        f"decrypt {a.device_id} 1 {m1['data']}").startswith("err "))

    # --- B replies; A's messages become kex=0 once A decrypted it ----------
    r1 = km()
    rep1 = send(b, a, r1)
    r.check("B's reply (passive session) is kex=0", rep1["kex"] == "0")
    check_message(ns, r, rep1, "B reply")
    m4k = km()
    m4 = send(a, b, m4k)
    r.check("A still kex=1 before decrypting the reply", m4["kex"] == "1")
    exchange("A decrypts B's reply", b, a, r1, rep1)
    exchange("B decrypts m4 (kex=1, same session)", a, b, m4k, m4)
    k5 = km()
    m5 = send(a, b, k5)
    r.check("A kex=0 after decrypting B's reply", m5["kex"] == "0")
    check_message(ns, r, m5, "A m5")
    exchange("B decrypts m5 (kex=0)", a, b, k5, m5)

    # --- several each way, out of order within and across ratchet steps ---
    ks = [km() for _ in range(3)]
    ms = [send(a, b, k) for k in ks]
    r.check("A m6..m8 all kex=0", all(m["kex"] == "0" for m in ms))
    exchange("B decrypts m8 first", a, b, ks[2], ms[2])
    exchange("B decrypts m6", a, b, ks[0], ms[0])
    rks = [km() for _ in range(2)]
    rms = [send(b, a, k) for k in rks]
    r.check("B r2,r3 kex=0", all(m["kex"] == "0" for m in rms))
    exchange("A decrypts r3 first", b, a, rks[1], rms[1])
    exchange("B decrypts skipped m7 after replying", a, b, ks[1], ms[1])
    exchange("A decrypts skipped r2", b, a, rks[0], rms[0])
    r.check("replay of r2 is refused", a.oracle.expect_err(
        f"decrypt {b.device_id} 0 {rms[0]['data']}").startswith("err "))

    # m9 is held back while the ratchet turns (A: new sending chain after r4)
    k9 = km()
    m9 = send(a, b, k9)
    r4k = km()
    r4 = send(b, a, r4k)
    exchange("A decrypts r4 (DH ratchet step)", b, a, r4k, r4)
    k10 = km()
    m10 = send(a, b, k10)
    exchange("B decrypts m10 from A's new chain", a, b, k10, m10)
    exchange("B decrypts m9 from A's previous chain", a, b, k9, m9)

    # --- errors keep the process alive and do not corrupt the session -----
    tampered = bytearray(b64d(m10["data"]))
    tampered[len(tampered) // 2] ^= 0x01
    r.check("tampered message is refused", b.oracle.expect_err(
        f"decrypt {a.device_id} 0 {b64e(bytes(tampered))}").startswith("err "))
    r.check("bad base64 is refused", b.oracle.expect_err(
        f"decrypt {a.device_id} 0 !!notbase64").startswith("err "))
    r.check("unknown request is refused", b.oracle.expect_err("frobnicate 1 2").startswith("err "))
    r.check("decrypt from unknown device is refused", b.oracle.expect_err(
        f"decrypt 4242 0 {m10['data']}").startswith("err "))
    k11 = km()
    exchange("session still fine after errors", a, b, k11, send(a, b, k11))
    r.check("encrypt without session is refused", a.oracle.expect_err(
        f"encrypt 4242 {b64e(km())}").startswith("err "))

    # --- a new key exchange replaces the session; pre-keys are one-time ---
    k12 = km()
    m12 = send(a, b, k12, bundle=1)
    r.check("rebuilt session starts with kex=1", m12["kex"] == "1")
    exchange("B builds the replacement session", a, b, k12, m12)
    k13 = km()
    exchange("B replies on the replacement session", b, a, k13, send(b, a, k13))
    k14 = km()
    m14 = send(a, b, k14)
    r.check("replacement session kex=0 after reply", m14["kex"] == "0")
    exchange("replacement session A->B", a, b, k14, m14)
    stale = send(a, b, km(), bundle=0)  # pre-key 0 was consumed by m1
    r.check("consumed one-time pre-key is refused", b.oracle.expect_err(
        f"decrypt {a.device_id} 1 {stale['data']}").startswith("err "))
    # that failed attempt replaced A's session only; rebuild with a fresh pre-key
    k15 = km()
    exchange("fresh pre-key after the refusal", a, b, k15, send(a, b, k15, bundle=2))

    # --- the reverse direction: B initiates with A's bundle ---------------
    k16 = km()
    m16 = send(b, a, k16, bundle=0)
    r.check("B->A initiation is kex=1", m16["kex"] == "1")
    exchange("A decrypts B's key exchange", b, a, k16, m16)

    # --- payload path: seal, carry key material through the ratchet, open --
    for text in ["Hello from Starling’s OMEMO interop test ✓",
                 "x",
                 "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>"
                 + "long " * 40 + "</body></content></envelope>"]:
        plaintext = text.encode("utf-8")
        sealed = a.oracle.request(f"seal {b64e(plaintext)}")
        sealed_km = b64d(sealed["key_material"])
        r.check(f"seal key_material is {size['km']} bytes", len(sealed_km) == size["km"])
        if ns == "oldmemo":
            r.check("seal iv is 12 bytes", len(b64d(sealed.get("iv", ""))) == 12)
            r.check("oldmemo payload is GCM ciphertext without tag",
                    len(b64d(sealed["payload"])) == len(plaintext))
        else:
            r.check("twomemo has no iv", "iv" not in sealed)
            r.check("twomemo payload is PKCS#7-padded CBC",
                    len(b64d(sealed["payload"])) == (len(plaintext) // 16 + 1) * 16)
        msg = send(a, b, sealed_km)
        got_km = recv(b, a, msg)
        r.check("payload key material survives the ratchet", got_km == sealed_km)
        open_line = f"open {b64e(got_km)} {sealed['payload']}"
        if "iv" in sealed:
            open_line += f" {sealed['iv']}"
        opened = b64d(b.oracle.request(open_line)["plaintext"])
        r.check(f"B opens the payload ({len(plaintext)} bytes)", opened == plaintext, repr(opened))
        bad = bytearray(b64d(sealed["payload"]))
        bad[0] ^= 0x80
        bad_line = f"open {b64e(got_km)} {b64e(bytes(bad))}"
        if "iv" in sealed:
            bad_line += f" {sealed['iv']}"
        r.check("tampered payload is refused", b.oracle.expect_err(bad_line).startswith("err "))

    r.check("A exits 0 on quit", a.oracle.close() == 0)
    # B: EOF alone must end the process with status 0 too
    assert b.oracle.proc.stdin
    b.oracle.proc.stdin.close()
    r.check("B exits 0 on EOF", b.oracle.proc.wait(timeout=30) == 0)


def check_key_exchange(ns: str, r: Results, msg: Dict[str, str], sender: Device, receiver: Device) -> None:
    """Decode the kex=1 bytes with the namespace's protobuf schema."""
    data = b64d(msg["data"])
    pk_id = receiver.prekeys[0][0]
    if ns == "oldmemo":
        from oldmemo.oldmemo_pb2 import OMEMOKeyExchange
        r.check("PreKeyWhisperMessage version byte 0x33", data[0] == 0x33)
        kex = OMEMOKeyExchange.FromString(data[1:])
        r.check("PreKeyWhisperMessage has no registrationId (field 5)", not kex.HasField("unused"))
        r.check("PreKeyWhisperMessage ik = sender's bundle ik (33 B)",
                kex.ik == b64d(sender.bundle["ik"]))
        r.check("PreKeyWhisperMessage ek is 33 B", len(kex.ek) == 33 and kex.ek[0] == 0x05)
        r.check("embedded WhisperMessage: 0x33 ‖ protobuf ‖ 8-byte MAC", kex.message[0] == 0x33)
    else:
        from twomemo.twomemo_pb2 import OMEMOKeyExchange
        kex = OMEMOKeyExchange.FromString(data)
        r.check("OMEMOKeyExchange ik = sender's bundle ik (32 B)", kex.ik == b64d(sender.bundle["ik"]))
        r.check("OMEMOKeyExchange ek is 32 B", len(kex.ek) == 32)
        r.check("embedded OMEMOAuthenticatedMessage mac is 16 B", len(kex.message.mac) == 16)
    r.check("key exchange names the pre-key and signed pre-key ids",
            kex.pk_id == pk_id and kex.spk_id == int(receiver.bundle["spk_id"]))


def check_message(ns: str, r: Results, msg: Dict[str, str], label: str) -> None:
    """Decode the kex=0 bytes with the namespace's protobuf schema."""
    data = b64d(msg["data"])
    if ns == "oldmemo":
        from oldmemo.oldmemo_pb2 import OMEMOMessage
        r.check(f"{label}: WhisperMessage version byte 0x33", data[0] == 0x33)
        inner = OMEMOMessage.FromString(data[1:-8])  # strip version byte and 8-byte MAC
        r.check(f"{label}: WhisperMessage ratchet key is 33 B", len(inner.dh_pub) == 33)
    else:
        from twomemo.twomemo_pb2 import OMEMOAuthenticatedMessage, OMEMOMessage
        outer = OMEMOAuthenticatedMessage.FromString(data)
        inner = OMEMOMessage.FromString(outer.message)
        r.check(f"{label}: OMEMOAuthenticatedMessage mac 16 B, dh_pub 32 B",
                len(outer.mac) == 16 and len(inner.dh_pub) == 32)


def main(argv: List[str]) -> int:
    namespaces = argv[1:] or ["oldmemo", "twomemo"]
    r = Results()
    for ns in namespaces:
        try:
            run_namespace(ns, r)
        except OracleError as e:
            r.check(f"{ns}: protocol run", False, str(e))
    print(f"selftest: {r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
