#!/usr/bin/env python3
"""OMEMO reference oracle for Starling's interop tests (python-omemo backends).

One process is one OMEMO device of one namespace. The Rust interop tests start
it as a child process and drive it over stdin/stdout with the line protocol in
``PROTOCOL.md`` next to this file (that file is the contract; read it first).

Reference implementation
------------------------
The cryptography is done entirely by python-omemo's backends, used one level
below ``omemo.SessionManager`` so that no XMPP, device-list or trust handling
gets in the way:

* ``oldmemo.Oldmemo``  -- ``eu.siacs.conversations.axolotl`` (XEP-0384 v0.3)
* ``twomemo.Twomemo``  -- ``urn:xmpp:omemo:2``

Per request the oracle calls (``B`` is the backend, all with in-memory storage):

* ``setup``   ``B.generate_pre_keys`` + ``B.get_bundle``, serialised to the
  wire with ``<ns>.etree.serialize_bundle`` (so e.g. the oldmemo identity key is
  the 0x05-prefixed Curve25519 form and the Ed25519 sign bit is folded into
  bit 7 of byte 63 of the XEdDSA signature exactly as python-oldmemo puts it in
  the ``<bundle>`` element).
* ``encrypt`` with bundle: ``<ns>.etree.parse_bundle`` then
  ``B.build_session_active``; without: ``B.load_session`` +
  ``B.encrypt_key_material``. The ``<key>`` bytes are
  ``EncryptedKeyMaterialImpl.serialize()``, wrapped by
  ``KeyExchangeImpl.serialize()`` while the session is active and unconfirmed
  (the same rule ``SessionManager.encrypt`` uses for ``prekey="true"``/
  ``kex="true"``).
* ``decrypt`` ``KeyExchangeImpl.parse`` / ``EncryptedKeyMaterialImpl.parse``,
  then ``B.build_session_passive`` (or ``B.decrypt_key_material`` if the key
  exchange builds the passive session that already exists, as
  ``SessionManager.decrypt`` does), ``B.store_session`` and
  ``B.delete_pre_key`` for key exchanges.
* ``seal``/``open`` ``B.encrypt_plaintext`` / ``B.decrypt_plaintext``.

Licence situation
-----------------
``oldmemo`` (and ``slixmpp-omemo``) are AGPL-3.0-only; ``omemo``, ``twomemo``
(relicensed to MIT as of 2.1.0), ``X3DH``, ``DoubleRatchet`` and ``XEdDSA`` are
MIT. They are used here only as *test tools*: this script runs as a separate
process in the test suite, talks to the Rust code over a pipe, and is never
linked into, imported by, or shipped with Starling.

Diagnostics (tracebacks, library logging) go to stderr; stdout carries nothing
but one response line per request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import logging
import sys
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from omemo.session import Initiation
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import JSONType

import oldmemo.etree
import oldmemo.oldmemo
import twomemo.etree
import twomemo.twomemo

# The bare JIDs only name storage slots inside the backends; they never enter
# the cryptography. Sessions are told apart by the peer's device id alone.
OWN_JID = "oracle@starling.test"
PEER_JID = "peer@starling.test"


class MemoryStorage(Storage):
    """The simplest possible python-omemo storage: a dict, gone at exit."""

    def __init__(self) -> None:
        super().__init__(disable_cache=True)
        self.__data: Dict[str, JSONType] = {}

    async def _load(self, key: str) -> Maybe[JSONType]:
        if key in self.__data:
            return Just(copy.deepcopy(self.__data[key]))
        return Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self.__data[key] = copy.deepcopy(value)

    async def _delete(self, key: str) -> None:
        self.__data.pop(key, None)


class RequestError(Exception):
    """A malformed or out-of-order request (reported as ``err``)."""


def b64d(value: str, what: str) -> bytes:
    """Strict standard base64 with padding (RFC 4648 section 4)."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise RequestError(f"{what}: invalid base64") from e


def b64e(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def parse_int(value: str, what: str) -> int:
    if not value.isdigit():
        raise RequestError(f"{what}: not a decimal integer: {value!r}")
    return int(value)


@dataclass
class WireBundle:
    """The public bundle fields as they appear (base64-decoded) in XML."""

    ik: bytes
    spk_id: int
    spk: bytes
    spk_sig: bytes
    prekeys: List[Tuple[int, bytes]]


# --------------------------------------------------------------------------
# Per-namespace glue. Everything byte-format related is delegated to the
# packages' own etree serialisers / message (de)serialisers, so the oracle
# cannot drift from what python-omemo puts on the wire.
# --------------------------------------------------------------------------

class Namespace:
    """What differs between the namespaces; the common paths use ``impl``."""

    name: str
    impl: Any  # the oldmemo.oldmemo / twomemo.twomemo implementation module

    def make_backend(self, storage: Storage) -> Any:
        raise NotImplementedError

    def bundle_to_wire(self, bundle: Any) -> WireBundle:
        raise NotImplementedError

    def bundle_from_wire(self, wire: WireBundle, device_id: int) -> Any:
        raise NotImplementedError

    def serialize_key_exchange(self, key_exchange: Any, authenticated: bytes) -> bytes:
        raise NotImplementedError

    def parse_key_exchange(self, data: bytes) -> Tuple[Any, bytes]:
        raise NotImplementedError

    def make_content(self, payload: bytes, iv: Optional[bytes]) -> Any:
        raise NotImplementedError

    def content_iv(self, content: Any) -> Optional[bytes]:
        raise NotImplementedError

    # Shared helpers -------------------------------------------------------

    def plain_key_material(self, key_material: bytes) -> Any:
        """Split ``key ‖ auth tag`` the way the backends join them."""
        impl = self.impl.PlainKeyMaterialImpl
        return impl(key_material[:impl.KEY_LENGTH], key_material[impl.KEY_LENGTH:])

    def encrypted_key_material(self, authenticated: bytes, own_device_id: int) -> Any:
        impl = self.impl.EncryptedKeyMaterialImpl
        # Like <ns>.etree.parse_message: the key material is addressed to us.
        return impl.parse(authenticated, OWN_JID, own_device_id)

    def ns_tag(self, local: str) -> str:
        return f"{{{self.impl.NAMESPACE}}}{local}"


class Oldmemo(Namespace):
    name = "oldmemo"
    impl = oldmemo.oldmemo

    def make_backend(self, storage: Storage) -> Any:
        return oldmemo.oldmemo.Oldmemo(storage)

    def bundle_to_wire(self, bundle: Any) -> WireBundle:
        elt = oldmemo.etree.serialize_bundle(bundle)
        spk_elt = elt.find(self.ns_tag("signedPreKeyPublic"))
        return WireBundle(
            ik=b64d(elt.findtext(self.ns_tag("identityKey")), "ik"),
            spk_id=int(spk_elt.get("signedPreKeyId")),
            spk=b64d(spk_elt.text, "spk"),
            spk_sig=b64d(elt.findtext(self.ns_tag("signedPreKeySignature")), "spk_sig"),
            prekeys=sorted(
                (int(pk.get("preKeyId")), b64d(pk.text, "pk"))
                for pk in elt.iter(self.ns_tag("preKeyPublic"))
            ),
        )

    def bundle_from_wire(self, wire: WireBundle, device_id: int) -> Any:
        elt = ET.Element(self.ns_tag("bundle"))
        ET.SubElement(elt, self.ns_tag("signedPreKeyPublic"),
                      attrib={"signedPreKeyId": str(wire.spk_id)}).text = b64e(wire.spk)
        ET.SubElement(elt, self.ns_tag("signedPreKeySignature")).text = b64e(wire.spk_sig)
        ET.SubElement(elt, self.ns_tag("identityKey")).text = b64e(wire.ik)
        prekeys = ET.SubElement(elt, self.ns_tag("prekeys"))
        for pk_id, pk in wire.prekeys:
            ET.SubElement(prekeys, self.ns_tag("preKeyPublic"),
                          attrib={"preKeyId": str(pk_id)}).text = b64e(pk)
        return oldmemo.etree.parse_bundle(elt, PEER_JID, device_id)

    def serialize_key_exchange(self, key_exchange: Any, authenticated: bytes) -> bytes:
        serialized, _sign_bit = key_exchange.serialize(authenticated)
        return serialized

    def parse_key_exchange(self, data: bytes) -> Tuple[Any, bytes]:
        # A PreKeyWhisperMessage carries the sender's identity key only in
        # Curve25519 form; python-oldmemo needs the Ed25519 sign bit to turn it
        # back into its internal Ed25519 form and normally takes it from the
        # sender's bundle. It never influences the cryptography (X3DH and the
        # associated data use the Curve25519 form), so a fixed ``False`` keeps
        # the parsed identity key consistent across messages of one session.
        return oldmemo.oldmemo.KeyExchangeImpl.parse(data, False)

    def make_content(self, payload: bytes, iv: Optional[bytes]) -> Any:
        if iv is None:
            raise RequestError("oldmemo open needs <iv>")
        return oldmemo.oldmemo.ContentImpl(payload, iv)

    def content_iv(self, content: Any) -> Optional[bytes]:
        return content.initialization_vector


class Twomemo(Namespace):
    name = "twomemo"
    impl = twomemo.twomemo

    def make_backend(self, storage: Storage) -> Any:
        return twomemo.twomemo.Twomemo(storage)

    def bundle_to_wire(self, bundle: Any) -> WireBundle:
        elt = twomemo.etree.serialize_bundle(bundle)
        spk_elt = elt.find(self.ns_tag("spk"))
        return WireBundle(
            ik=b64d(elt.findtext(self.ns_tag("ik")), "ik"),
            spk_id=int(spk_elt.get("id")),
            spk=b64d(spk_elt.text, "spk"),
            spk_sig=b64d(elt.findtext(self.ns_tag("spks")), "spk_sig"),
            prekeys=sorted(
                (int(pk.get("id")), b64d(pk.text, "pk"))
                for pk in elt.iter(self.ns_tag("pk"))
            ),
        )

    def bundle_from_wire(self, wire: WireBundle, device_id: int) -> Any:
        elt = ET.Element(self.ns_tag("bundle"))
        ET.SubElement(elt, self.ns_tag("spk"), attrib={"id": str(wire.spk_id)}).text = b64e(wire.spk)
        ET.SubElement(elt, self.ns_tag("spks")).text = b64e(wire.spk_sig)
        ET.SubElement(elt, self.ns_tag("ik")).text = b64e(wire.ik)
        prekeys = ET.SubElement(elt, self.ns_tag("prekeys"))
        for pk_id, pk in wire.prekeys:
            ET.SubElement(prekeys, self.ns_tag("pk"), attrib={"id": str(pk_id)}).text = b64e(pk)
        return twomemo.etree.parse_bundle(elt, PEER_JID, device_id)

    def serialize_key_exchange(self, key_exchange: Any, authenticated: bytes) -> bytes:
        return key_exchange.serialize(authenticated)

    def parse_key_exchange(self, data: bytes) -> Tuple[Any, bytes]:
        return twomemo.twomemo.KeyExchangeImpl.parse(data)

    def make_content(self, payload: bytes, iv: Optional[bytes]) -> Any:
        if iv is not None:
            raise RequestError("twomemo open takes no <iv>")
        return twomemo.twomemo.ContentImpl(payload)

    def content_iv(self, content: Any) -> Optional[bytes]:
        return None


NAMESPACES: Dict[str, Callable[[], Namespace]] = {
    "oldmemo": Oldmemo,
    oldmemo.oldmemo.NAMESPACE: Oldmemo,
    "twomemo": Twomemo,
    twomemo.twomemo.NAMESPACE: Twomemo,
}


# --------------------------------------------------------------------------
# The device
# --------------------------------------------------------------------------

class Oracle:
    def __init__(self) -> None:
        self.ns: Optional[Namespace] = None
        self.backend: Any = None
        self.device_id = 0

    def _require_setup(self) -> Tuple[Namespace, Any]:
        if self.ns is None:
            raise RequestError("setup must be the first request")
        return self.ns, self.backend

    async def setup(self, args: List[str]) -> str:
        if self.ns is not None:
            raise RequestError("setup was already done")
        if len(args) != 3:
            raise RequestError("usage: setup <ns> <device_id> <prekey_count>")
        if args[0] not in NAMESPACES:
            raise RequestError(f"unknown namespace {args[0]!r} (oldmemo or twomemo)")
        device_id = parse_int(args[1], "device_id")
        prekey_count = parse_int(args[2], "prekey_count")

        ns = NAMESPACES[args[0]]()
        # The identity key pair (stored under /ikp/ by omemo.IdentityKeyPair)
        # and the signed pre-key are created lazily by the backend's first
        # X3DH state access; one-time pre-keys only on request.
        backend = ns.make_backend(MemoryStorage())
        await backend.generate_pre_keys(prekey_count)
        wire = ns.bundle_to_wire(await backend.get_bundle(OWN_JID, device_id))

        self.ns, self.backend, self.device_id = ns, backend, device_id
        prekeys = ",".join(f"{pk_id}:{b64e(pk)}" for pk_id, pk in wire.prekeys)
        return (f"ok ik={b64e(wire.ik)} spk_id={wire.spk_id} spk={b64e(wire.spk)} "
                f"spk_sig={b64e(wire.spk_sig)} prekeys={prekeys}")

    async def encrypt(self, args: List[str]) -> str:
        ns, backend = self._require_setup()
        if len(args) not in (2, 8):
            raise RequestError("usage: encrypt <peer_device_id> <key_material> "
                               "[<ik> <spk_id> <spk> <spk_sig> <pk_id> <pk>]")
        peer = parse_int(args[0], "peer_device_id")
        plain = ns.plain_key_material(b64d(args[1], "key_material"))

        if len(args) == 8:
            wire = WireBundle(
                ik=b64d(args[2], "ik"),
                spk_id=parse_int(args[3], "spk_id"),
                spk=b64d(args[4], "spk"),
                spk_sig=b64d(args[5], "spk_sig"),
                prekeys=[(parse_int(args[6], "pk_id"), b64d(args[7], "pk"))],
            )
            bundle = ns.bundle_from_wire(wire, peer)
            # Active X3DH; with a single pre-key in the bundle the library's
            # random pre-key choice is forced. Replaces any old session once
            # stored below.
            session, encrypted = await backend.build_session_active(PEER_JID, peer, bundle, plain)
        else:
            session = await backend.load_session(PEER_JID, peer)
            if session is None:
                raise RequestError(f"no session with device {peer}")
            encrypted = await backend.encrypt_key_material(session, plain)

        authenticated = encrypted.serialize()
        # SessionManager.encrypt: the key exchange is attached until the
        # actively built session has decrypted a message from the peer.
        kex = session.initiation is Initiation.ACTIVE and not session.confirmed
        data = ns.serialize_key_exchange(session.key_exchange, authenticated) if kex else authenticated

        await backend.store_session(session)
        return f"ok kex={int(kex)} data={b64e(data)}"

    async def decrypt(self, args: List[str]) -> str:
        ns, backend = self._require_setup()
        if len(args) != 3:
            raise RequestError("usage: decrypt <peer_device_id> <kex> <data>")
        peer = parse_int(args[0], "peer_device_id")
        if args[1] not in ("0", "1"):
            raise RequestError("kex must be 0 or 1")
        kex = args[1] == "1"
        data = b64d(args[2], "data")

        key_exchange = None
        authenticated = data
        if kex:
            key_exchange, authenticated = ns.parse_key_exchange(data)
        encrypted = ns.encrypted_key_material(authenticated, self.device_id)

        # Session selection exactly as SessionManager.decrypt does it. Sessions
        # are always loaded fresh from storage and only stored after success,
        # so a failed decryption leaves the ratchet untouched.
        session = await backend.load_session(PEER_JID, peer)
        if key_exchange is None:
            if session is None:
                raise RequestError(f"no session with device {peer} and no key exchange")
            plain = await backend.decrypt_key_material(session, encrypted)
        elif (session is not None
              and session.initiation is Initiation.PASSIVE
              and session.key_exchange.builds_same_session(key_exchange)):
            # A repeated key exchange (the peer has not heard from us yet):
            # keep using the passive session it built.
            plain = await backend.decrypt_key_material(session, encrypted)
        else:
            session, plain = await backend.build_session_passive(PEER_JID, peer, key_exchange, encrypted)

        await backend.store_session(session)
        if key_exchange is not None:
            # Outside history synchronisation SessionManager deletes the used
            # one-time pre-key right away (returns False if already gone).
            await backend.delete_pre_key(session)
        return f"ok key_material={b64e(plain.key + plain.auth_tag)}"

    async def seal(self, args: List[str]) -> str:
        ns, backend = self._require_setup()
        if len(args) != 1:
            raise RequestError("usage: seal <plaintext>")
        content, plain = await backend.encrypt_plaintext(b64d(args[0], "plaintext"))
        out = f"ok key_material={b64e(plain.key + plain.auth_tag)} payload={b64e(content.ciphertext)}"
        iv = ns.content_iv(content)
        if iv is not None:
            out += f" iv={b64e(iv)}"
        return out

    async def open(self, args: List[str]) -> str:
        ns, backend = self._require_setup()
        if len(args) not in (2, 3):
            raise RequestError("usage: open <key_material> <payload> [<iv>]")
        plain = ns.plain_key_material(b64d(args[0], "key_material"))
        iv = b64d(args[2], "iv") if len(args) == 3 else None
        content = ns.make_content(b64d(args[1], "payload"), iv)
        if content.empty:
            raise RequestError("empty payload")
        return f"ok plaintext={b64e(await backend.decrypt_plaintext(content, plain))}"


def describe(exc: BaseException) -> str:
    """One line: the exception and its causes (python-omemo wraps a lot)."""
    parts = []
    seen = set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(cur).strip()
        parts.append(f"{type(cur).__name__}: {text}" if text else type(cur).__name__)
        cur = cur.__cause__ or cur.__context__
    return " <- ".join(parts).replace("\r", " ").replace("\n", " ")


def main() -> int:
    # Keep the protocol channel clean: anything printed by accident (or by a
    # library) lands on stderr; responses are written to the real stdout.
    out = sys.stdout
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="oracle[%(levelname)s] %(name)s: %(message)s")

    oracle = Oracle()
    handlers = {
        "setup": oracle.setup,
        "encrypt": oracle.encrypt,
        "decrypt": oracle.decrypt,
        "seal": oracle.seal,
        "open": oracle.open,
    }
    loop = asyncio.new_event_loop()
    try:
        for raw in sys.stdin:
            line = raw.rstrip("\r\n")
            tokens = line.split(" ")
            command, args = tokens[0], tokens[1:]
            if command == "quit":
                break
            try:
                handler = handlers.get(command)
                if handler is None:
                    raise RequestError(f"unknown request {command!r}")
                response = loop.run_until_complete(handler(args))
            except Exception as e:  # pylint: disable=broad-except
                traceback.print_exc(file=sys.stderr)
                response = f"err {describe(e)}"
            out.write(response + "\n")
            out.flush()
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
