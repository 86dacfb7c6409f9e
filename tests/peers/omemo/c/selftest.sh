#!/bin/sh
# Self-test of the libomemo-c OMEMO oracle (test-only tool, see oracle.c).
#
#   tests/peers/omemo/c/selftest.sh [--no-cross]
#
# Builds the oracle into a temporary directory and drives pairs of oracle
# processes through ../PROTOCOL.md (requests/responses on the pipes only, bytes
# passed through unchanged), for both namespaces:
#   * setup of both devices, sizes of every bundle field, and the signed
#     pre-key signature checked independently with `openssl pkeyutl` as an
#     Ed25519 signature (oldmemo: XEdDSA over the 33-byte spk under the
#     Ed25519 form of the Curve25519 ik; twomemo: Ed25519 over the 32-byte spk),
#   * A -> B key exchange from B's bundle (kex=1), more kex=1 messages while A
#     has not heard from B, delivered out of order,
#   * B replies (kex=0); after A decrypted it A's messages are kex=0,
#   * several messages each way, out-of-order delivery across a ratchet step,
#   * a replayed message gives `err` and the process keeps working,
#   * B builds a new session from A's bundle, replacing the old one.
# Pairs: C<->C always; C<->python (../oracle.py with the repo's .venv) in both
# directions when that oracle is available, unless --no-cross is given.
# Exits non-zero on any mismatch.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
repo=$(CDPATH= cd -- "$here/../../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$here/build.sh" "$tmp/omemo-oracle-c"

cross=1
[ "${1:-}" = "--no-cross" ] && cross=0
py_bin=""
if [ "$cross" = 1 ] && [ -x "$repo/.venv/bin/python" ] && [ -f "$here/../oracle.py" ]; then
    py_bin="$repo/.venv/bin/python"
fi

# Not exec: the EXIT trap has to remove the temporary directory afterwards.
/usr/bin/python3 - "$tmp/omemo-oracle-c" "$py_bin" "$here/../oracle.py" "$tmp" <<'PY'
import base64
import os
import secrets
import subprocess
import sys

C_BIN, PY_BIN, PY_ORACLE, TMP = sys.argv[1:5]
PY_CMD = [PY_BIN, PY_ORACLE] if PY_BIN else None

SIZES = {
    "oldmemo": dict(ik=33, spk=33, spk_sig=64, pk=33, km=32),
    "twomemo": dict(ik=32, spk=32, spk_sig=64, pk=32, km=48),
}

passed = 0
failed = 0
known = []


def b64e(b):
    return base64.b64encode(b).decode()


def b64d(s):
    return base64.b64decode(s, validate=True)


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"    FAIL: {what}")
    return cond


class Peer:
    def __init__(self, kind, label, device_id):
        self.kind, self.label, self.device_id = kind, label, device_id
        cmd = [C_BIN] if kind == "C" else PY_CMD
        self.err = open(os.path.join(TMP, f"{label}.stderr"), "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, bufsize=1)

    def raw(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        resp = self.proc.stdout.readline()
        if not resp.endswith("\n"):
            raise RuntimeError(f"{self.label}: process died on {line.split(' ')[0]}")
        return resp[:-1]

    def req(self, line):
        resp = self.raw(line)
        if not (resp == "ok" or resp.startswith("ok ")):
            raise RuntimeError(f"{self.label}: {line.split(' ')[0]} -> {resp}")
        return dict(f.split("=", 1) for f in resp.split(" ")[1:])

    def quit(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        rc = self.proc.wait(timeout=10)
        self.err.close()
        return rc


# --- independent signature check (Ed25519 via the openssl CLI) -------------

P = 2**255 - 19


def mont_to_ed(u_bytes, sign):
    u = int.from_bytes(u_bytes, "little") % P
    y = (u - 1) * pow(u + 1, P - 2, P) % P
    return (y | (sign << 255)).to_bytes(32, "little")


def ed25519_verify(pub, msg, sig):
    d = os.path.join(TMP, "sig")
    os.makedirs(d, exist_ok=True)
    spki = bytes.fromhex("302a300506032b6570032100") + pub
    for name, data in (("pub.der", spki), ("msg", msg), ("sig", sig)):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                        "-inkey", os.path.join(d, "pub.der"), "-rawin",
                        "-in", os.path.join(d, "msg"), "-sigfile", os.path.join(d, "sig")],
                       capture_output=True)
    return r.returncode == 0


def check_bundle(ns, who, b):
    s = SIZES[ns]
    ik, spk, sig = b64d(b["ik"]), b64d(b["spk"]), b64d(b["spk_sig"])
    pks = [(int(i), b64d(k)) for i, k in (p.split(":") for p in b["prekeys"].split(","))]
    check(len(ik) == s["ik"], f"{who} ik is {len(ik)} bytes")
    check(len(spk) == s["spk"], f"{who} spk is {len(spk)} bytes")
    check(len(sig) == s["spk_sig"], f"{who} spk_sig is {len(sig)} bytes")
    check(all(len(k) == s["pk"] for _, k in pks), f"{who} pre-key sizes")
    if ns == "oldmemo":
        check(ik[0] == 5 and spk[0] == 5 and all(k[0] == 5 for _, k in pks), f"{who} 0x05 prefixes")
        # XEdDSA: verify as Ed25519 under the Ed25519 form of the X25519 ik;
        # a sign bit folded into bit 7 of byte 63 (python-oldmemo) is honoured.
        sign = sig[63] >> 7
        ed_sig = sig[:63] + bytes([sig[63] & 0x7F])
        check(ed25519_verify(mont_to_ed(ik[1:], sign), spk, ed_sig),
              f"{who} spk_sig is a valid XEdDSA signature over the 33-byte spk")
    else:
        check(ed25519_verify(ik, spk, sig),
              f"{who} spk_sig is a valid Ed25519 signature over the 32-byte spk under ik")
    return pks


# --- the conversation --------------------------------------------------------

def bundle_args(b, pk_id, pk):
    return f"{b['ik']} {b['spk_id']} {b['spk']} {b['spk_sig']} {pk_id} {b64e(pk)}"


def run_pair(ns, kind_a, kind_b):
    km_len = SIZES[ns]["km"]
    a = Peer(kind_a, f"{ns}-A-{kind_a}", 1001)
    b = Peer(kind_b, f"{ns}-B-{kind_b}", 2002)
    print(f"  {ns}: A={kind_a} (1001) <-> B={kind_b} (2002)")
    step = ["setup"]
    try:
        ba = a.req(f"setup {ns} {a.device_id} 5")
        bb = b.req(f"setup {ns} {b.device_id} 5")
        pks_a = check_bundle(ns, "A", ba)
        pks_b = check_bundle(ns, "B", bb)

        counter = [0]

        def send(src, dst, expect_kex, bundle=None, deliver=True):
            counter[0] += 1
            step[0] = f"message #{counter[0]} {src.label} -> {dst.label}"
            km = secrets.token_bytes(km_len)
            line = f"encrypt {dst.device_id} {b64e(km)}"
            if bundle:
                line += " " + bundle
            r = src.req(line)
            check(r["kex"] == str(expect_kex), f"at {step[0]}: kex={r['kex']}, expected {expect_kex}")
            msg = (src, dst, r["kex"], r["data"], km, step[0])
            if deliver:
                recv(msg)
            return msg

        def recv_last(msg):
            src, dst = msg[0], msg[1]
            if not (src.kind == "C" and dst.kind == "Py"):
                recv(msg)
                return
            # libomemo-c (like libsignal) puts the index of the last message
            # of the previous sending chain into pn (count - 1, see
            # session_cipher.c get_or_create_chain_key); python-doubleratchet
            # reads pn as the count and so stores no skipped key for exactly
            # this message. Reported, not counted as a failure of the oracle.
            step[0] = msg[5]
            resp = dst.raw(f"decrypt {src.device_id} {msg[2]} {msg[3]}")
            if resp.startswith("err "):
                known.append(f"{ns} {src.label} -> {dst.label}: last message of a chain "
                             f"after the ratchet step: {resp[:110]}")
            else:
                known.append(f"{ns} {src.label} -> {dst.label}: last message of a chain "
                             f"after the ratchet step now decrypts (pn off-by-one gone?)")
                recv_check(resp, msg)

        def recv_check(resp, msg):
            r = dict(f.split("=", 1) for f in resp.split(" ")[1:])
            check(b64d(r.get("key_material", "")) == msg[4],
                  f"at {msg[5]}: {msg[1].label} decrypted different bytes")

        def recv(msg):
            src, dst, kex, data, km, step[0] = msg
            r = dst.req(f"decrypt {src.device_id} {kex} {data}")
            check(b64d(r["key_material"]) == km, f"at {step[0]}: {dst.label} decrypted different bytes")

        # A -> B key exchange with B's pre-key 1.
        send(a, b, 1, bundle_args(bb, *pks_b[0]))
        # More kex=1 messages while A has not heard from B; out of order.
        m2 = send(a, b, 1, deliver=False)
        m3 = send(a, b, 1, deliver=False)
        recv(m3)
        recv(m2)
        # B replies; afterwards A's messages are kex=0.
        send(b, a, 0)
        m4 = send(a, b, 0, deliver=False)
        m5 = send(a, b, 0, deliver=False)
        m6 = send(a, b, 0, deliver=False)
        recv(m6)
        recv(m4)
        recv(m5)
        # Several rounds each way; a message that is not the last of its
        # sending chain is held back across ratchet steps.
        held = None
        for i in range(3):
            x = send(b, a, 0, deliver=(i != 1))
            if i == 1:
                held = x
            send(b, a, 0)
            send(a, b, 0)
            send(a, b, 0)
        recv(held)
        # The *last* message of a sending chain delivered after the receiver
        # has ratcheted past that chain, in both directions. Strict ping-pong
        # first, so that every send starts a new chain.
        for src, dst in ((b, a), (a, b)):
            send(dst, src, 0)
            send(src, dst, 0)
            send(dst, src, 0)
            send(src, dst, 0)                     # chain S1 ...
            last = send(src, dst, 0, deliver=False)  # ... its last message
            send(dst, src, 0)                     # src ratchets on receipt
            send(src, dst, 0)                     # chain S2: dst moves past S1
            recv_last(last)
        # Replay: an error, and the process keeps working.
        resp = b.raw(f"decrypt {a.device_id} 0 {m4[3]}")
        check(resp.startswith("err "), f"replayed message gave {resp[:60]!r}")
        send(a, b, 0)
        send(b, a, 0)
        # B builds a new session from A's bundle (pre-key 2), replacing the old.
        send(b, a, 1, bundle_args(ba, *pks_a[1]))
        send(b, a, 1)
        send(a, b, 0)
        send(b, a, 0)
        send(a, b, 0)
        if kind_a == "C":
            resp = a.raw("seal AAAA")
            check(resp.startswith("err "), "C oracle answers seal with err")
    except Exception as e:  # noqa: BLE001 - report and count as a failure
        check(False, f"at {step[0]}: {type(e).__name__}: {e}")
    finally:
        check(a.quit() == 0, f"{a.label} exit status")
        check(b.quit() == 0, f"{b.label} exit status")


pairs = [("C", "C")]
cross_note = "C<->python cross-check skipped (no ../oracle.py or .venv)"
if PY_CMD:
    probe = subprocess.run(PY_CMD, input="setup twomemo 7 1\nquit\n",
                           capture_output=True, text=True)
    if probe.returncode == 0 and probe.stdout.startswith("ok "):
        pairs += [("C", "Py"), ("Py", "C")]
        cross_note = None
    else:
        last = (probe.stdout + probe.stderr).strip().splitlines()[-1:] or ["no output"]
        cross_note = f"C<->python cross-check skipped (python oracle does not work: {last[0]})"

for kind_a, kind_b in pairs:
    for ns in ("oldmemo", "twomemo"):
        run_pair(ns, kind_a, kind_b)

if cross_note:
    print(cross_note)
for k in known:
    print(f"KNOWN INCOMPATIBILITY (libomemo-c vs python-omemo, not an oracle bug): {k}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
