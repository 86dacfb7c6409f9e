"""OMEMO commands for the test peer (see peer.py for the protocol).

XEP-0384 in both namespaces on top of slixmpp-omemo 2.2 and python-omemo 2.1:
legacy `eu.siacs.conversations.axolotl` ("oldmemo": only the body is
encrypted) and `urn:xmpp:omemo:2` ("twomemo": the body travels in a XEP-0420
SCE envelope). slixmpp-omemo provides the PEP side (device lists, bundles,
device list notifications) and the session manager; its own
encrypt_message/decrypt_message are not used, because 2.2 has no SCE (it
never encrypts with twomemo and raises NotImplementedError when decrypting
it). We call the session manager directly and build/parse envelopes here.

Trust: blind trust before verification (BTBV) for everyone, as slixmpp-omemo
implements it: every new device of a JID nobody verified manually becomes
BLINDLY_TRUSTED when we first encrypt for it (and omemo_blind_trust is
emitted); omemo_trust can set a level by hand, after which that JID is on
manual trust and new devices make encryption fail (no prompt here).

Storage: python-omemo's key/value storage in memory, or in a JSON file when
omemo_enable gets "storage" (so a restarted peer keeps its device).

peer.py owns the connection and hands us its `emit`; it gives us every
incoming message first (claim()) and reports it as a plain message only when
we do not take it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, FrozenSet, Optional
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import oldmemo
import oldmemo.etree
import twomemo
import twomemo.etree
from omemo.session_manager import (
    MessageNotForUs,
    NoEligibleDevices,
    SenderNotFound,
    SessionManager,
    TrustDecisionFailed,
)
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import DeviceInformation, JSONType
from slixmpp import JID
from slixmpp.plugins.base import register_plugin
from slixmpp.stanza import Message
from slixmpp_omemo import TrustLevel, XEP_0384
from slixmpp_omemo.xep_0384 import (
    OLDMEMO_DEVICE_LIST_NODE,
    TWOMEMO_DEVICE_LIST_NODE,
    _make_session_manager,
)

OLDMEMO_NS = oldmemo.oldmemo.NAMESPACE  # eu.siacs.conversations.axolotl
TWOMEMO_NS = twomemo.twomemo.NAMESPACE  # urn:xmpp:omemo:2
SHORT = {OLDMEMO_NS: "oldmemo", TWOMEMO_NS: "twomemo"}
LONG = {"oldmemo": OLDMEMO_NS, "twomemo": TWOMEMO_NS}
DEVICE_LIST_NODES = {OLDMEMO_NS: OLDMEMO_DEVICE_LIST_NODE, TWOMEMO_NS: TWOMEMO_DEVICE_LIST_NODE}
# Priority when a device supports both (python-omemo's order, newest first).
DEFAULT_NAMESPACES = (TWOMEMO_NS, OLDMEMO_NS)
SCE_NS = "urn:xmpp:sce:1"
CLIENT_NS = "jabber:client"
SID_NS = "urn:xmpp:sid:0"
DELAY_NS = "urn:xmpp:delay"
HINTS_NS = "urn:xmpp:hints"
EME_NS = "urn:xmpp:eme:0"
FALLBACK_BODY = "This message is OMEMO encrypted."
MUC_RECIPIENT_AFFILIATIONS = ("owner", "admin", "member")

Json = dict[str, Any]
Emit = Callable[..., None]
CommandHandler = Callable[[Json, Json], Awaitable[None]]

log = logging.getLogger("omemo_peer")


def qname(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def namespace_of(name: str) -> str:
    """"oldmemo"/"twomemo" (or the namespace itself) -> namespace."""
    if name in LONG:
        return LONG[name]
    if name in SHORT:
        return name
    raise ValueError(f"unknown OMEMO namespace {name!r} (oldmemo or twomemo)")


def fingerprint(identity_key: bytes) -> str:
    """The usual OMEMO fingerprint: the Curve25519 form of the identity key, 64 hex chars."""
    return "".join(SessionManager.format_identity_key(identity_key))


def text_or_none(value: Any) -> str | None:
    s = str(value) if value is not None else ""
    return s if s else None


def envelope(body: str, sender: str, to: str) -> bytes:
    """A XEP-0420 envelope as XEP-0384 (0.8) wants it: content + rpad, from, to."""
    pad = secrets.token_urlsafe(200)[: secrets.randbelow(200)]
    return (
        f"<envelope xmlns='{SCE_NS}'><content><body xmlns='{CLIENT_NS}'>{escape(body)}</body>"
        f"</content><rpad>{pad}</rpad><to jid={quoteattr(to)}/><from jid={quoteattr(sender)}/>"
        "</envelope>"
    ).encode("utf-8")


def parse_envelope(plaintext: bytes) -> tuple[str | None, Json]:
    """(body, sce summary) of a decrypted twomemo payload."""
    try:
        root = ET.fromstring(plaintext)
    except ET.ParseError as exc:
        raise ValueError(f"the decrypted SCE envelope is not well-formed XML: {exc}") from None
    if root.tag != qname(SCE_NS, "envelope"):
        raise ValueError(f"the decrypted payload is {root.tag}, not an SCE envelope")
    content = root.find(qname(SCE_NS, "content"))
    if content is None:
        raise ValueError("the SCE envelope has no <content/>")
    body_el = content.find(qname(CLIENT_NS, "body"))
    from_el = root.find(qname(SCE_NS, "from"))
    to_el = root.find(qname(SCE_NS, "to"))
    time_el = root.find(qname(SCE_NS, "time"))
    sce = {
        "from": from_el.get("jid") if from_el is not None else None,
        "to": to_el.get("jid") if to_el is not None else None,
        "time": time_el.get("stamp") if time_el is not None else None,
        "rpad": root.find(qname(SCE_NS, "rpad")) is not None,
        "content": [child.tag for child in content],
    }
    body = (body_el.text or "") if body_el is not None else None
    return body, sce


def bundle_summary(namespace: str, bundle: Any) -> Json:
    """Signed pre-key id and number of one-time pre-keys of one of our bundles."""
    if namespace == TWOMEMO_NS:
        el = twomemo.etree.serialize_bundle(bundle)
        spk = el.find(qname(TWOMEMO_NS, "spk"))
        prekeys = el.find(qname(TWOMEMO_NS, "prekeys"))
        spk_id = spk.get("id") if spk is not None else None
    else:
        el = oldmemo.etree.serialize_bundle(bundle)
        spk = el.find(qname(OLDMEMO_NS, "signedPreKeyPublic"))
        prekeys = el.find(qname(OLDMEMO_NS, "prekeys"))
        spk_id = spk.get("signedPreKeyId") if spk is not None else None
    return {
        "spk_id": int(spk_id) if spk_id is not None else None,
        "prekeys": len(prekeys) if prekeys is not None else 0,
    }


class JsonStorage(Storage):
    """python-omemo storage: a dict, mirrored to a JSON file when given a path."""

    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self.path = path
        self.data: dict[str, JSONType] = {}
        if path is not None and path.exists():
            self.data = json.loads(path.read_text("utf-8"))

    def flush(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data), "utf-8")
        os.replace(tmp, self.path)

    async def _load(self, key: str) -> Maybe[JSONType]:
        if key in self.data:
            return Just(self.data[key])
        return Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self.data[key] = json.loads(json.dumps(value))  # a copy, and proof it is JSON
        self.flush()

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)
        self.flush()


class OmemoPlugin(XEP_0384):
    """slixmpp-omemo's XEP_0384 with our storage, BTBV, and a choice of namespaces.

    Registered on demand (omemo_enable), i.e. after session start."""

    name = "xep_0384"
    description = "XEP-0384: OMEMO (Starling test peer)"
    dependencies = {"xep_0004", "xep_0030", "xep_0060", "xep_0163", "xep_0280", "xep_0334"}
    default_config = {
        "fallback_message": FALLBACK_BODY,
        "storage_path": None,
        "namespaces": list(DEFAULT_NAMESPACES),
        "label": None,
        "on_blind_trust": None,
        "lock": None,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._storage: JsonStorage | None = None
        self._sm_task: asyncio.Future[SessionManager] | None = None
        self.backends: list[Any] = []

    def plugin_init(self) -> None:
        path = self.storage_path
        self._storage = JsonStorage(Path(path) if path else None)
        super().plugin_init()
        # slixmpp-omemo asks for both device lists (+notify); drop what we do not load.
        for ns, node in DEVICE_LIST_NODES.items():
            if ns not in self.namespaces:
                self.xmpp["xep_0163"].remove_interest(node)

    def session_bind(self, jid: JID) -> None:
        # slixmpp-omemo starts building the session manager here; omemo_enable
        # does (and reports failures) instead.
        pass

    @property
    def storage(self) -> Storage:
        assert self._storage is not None
        return self._storage

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def _devices_blindly_trusted(
        self, blindly_trusted: FrozenSet[DeviceInformation], identifier: Optional[str]
    ) -> None:
        if self.on_blind_trust is not None:
            self.on_blind_trust(blindly_trusted)

    async def _prompt_manual_trust(
        self, manually_trusted: FrozenSet[DeviceInformation], identifier: Optional[str]
    ) -> None:
        devices = ", ".join(f"{d.bare_jid}/{d.device_id}" for d in manually_trusted)
        raise TrustDecisionFailed(
            f"manual trust is in use for these devices' JIDs and they are undecided: {devices} "
            "(decide with omemo_trust)"
        )

    async def get_session_manager(self) -> SessionManager:
        # Replaces slixmpp-omemo's, which always loads both backends.
        if self._sm_task is None:
            self._sm_task = asyncio.ensure_future(self._create_session_manager())
        return await self._sm_task

    async def _create_session_manager(self) -> SessionManager:
        storage = self.storage
        self.backends = []
        for ns in DEFAULT_NAMESPACES:  # priority order: twomemo first
            if ns == TWOMEMO_NS and ns in self.namespaces:
                self.backends.append(twomemo.Twomemo(storage))
            if ns == OLDMEMO_NS and ns in self.namespaces:
                self.backends.append(oldmemo.Oldmemo(storage))
        if self.label is not None and not any(b.supports_labels for b in self.backends):
            raise ValueError("no loaded OMEMO backend supports device labels (python-omemo 2.1)")
        sm = await _make_session_manager(self.xmpp, self).create(
            self.backends,
            storage,
            self.xmpp.boundjid.bare,
            initial_own_label=self.label,
            undecided_trust_level_name=TrustLevel.UNDECIDED.value,
        )
        await sm.ensure_data_consistency()
        await sm.after_history_sync()
        self.xmpp.event("omemo_initialized")
        return sm

    async def _on_device_list_update(self, msg: Message) -> None:
        node = msg["pubsub_event"]["items"]["node"]
        loaded = {DEVICE_LIST_NODES[ns] for ns in self.namespaces}
        if node not in loaded:
            return
        lock = self.lock
        if lock is None:
            await super()._on_device_list_update(msg)
            return
        async with lock:
            await super()._on_device_list_update(msg)


register_plugin(OmemoPlugin)


class Omemo:
    """The omemo_* commands and the omemo_* events."""

    def __init__(self, xmpp: Any, emit: Emit, iq_timeout: float) -> None:
        self.xmpp = xmpp
        self.emit = emit
        self.iq_timeout = iq_timeout
        self.plugin: OmemoPlugin | None = None
        # One OMEMO operation at a time: the session manager is not reentrant
        # (two decryptions of one session at once would both load the old state).
        self.lock = asyncio.Lock()
        self.incoming: asyncio.Queue[tuple[Message, str | None]] = asyncio.Queue()
        self.worker: asyncio.Future[None] | None = None
        # Plaintexts of our groupchat messages by id: the room reflects them,
        # and we never encrypt for our own device.
        self.muc_sent: dict[str, tuple[str, str]] = {}

    def commands(self) -> dict[str, CommandHandler]:
        return {
            "omemo_enable": self.omemo_enable,
            "omemo_send": self.omemo_send,
            "omemo_muc_send": self.omemo_muc_send,
            "omemo_devices": self.omemo_devices,
            "omemo_refresh": self.omemo_refresh,
            "omemo_trust": self.omemo_trust,
            "omemo_mam": self.omemo_mam,
        }

    # ----- helpers -----------------------------------------------------------

    @property
    def me(self) -> str:
        return str(self.xmpp.boundjid.bare)

    def enabled(self) -> OmemoPlugin:
        if self.plugin is None:
            raise ValueError("OMEMO is not enabled (omemo_enable first)")
        return self.plugin

    async def session_manager(self) -> SessionManager:
        return await self.enabled().get_session_manager()

    def loaded(self) -> list[str]:
        return list(self.enabled().namespaces)

    def selected(self, name: str | None) -> list[str]:
        """The namespaces to encrypt with, in priority order."""
        loaded = self.loaded()
        if name is None:
            return [ns for ns in DEFAULT_NAMESPACES if ns in loaded]
        ns = namespace_of(name)
        if ns not in loaded:
            raise ValueError(f"{SHORT[ns]} is not enabled on this peer")
        return [ns]

    async def refresh(self, jids: set[str]) -> None:
        """Downloads the device lists of jids (ours included) in every loaded namespace.

        Done before each encryption so the peer never depends on whether a PEP
        notification arrived yet (for contacts slixmpp-omemo would only rely on
        notifications)."""
        sm = await self.session_manager()
        for jid in sorted(jids | {self.me}):
            for ns in self.loaded():
                await sm.refresh_device_list(ns, jid)

    def on_blind_trust(self, devices: FrozenSet[DeviceInformation]) -> None:
        self.emit(
            "omemo_blind_trust",
            devices=[
                {
                    "jid": d.bare_jid,
                    "device_id": d.device_id,
                    "fingerprint": fingerprint(d.identity_key),
                }
                for d in sorted(devices, key=lambda d: (d.bare_jid, d.device_id))
            ],
        )

    async def encrypt(
        self, recipients: set[str], body: str, namespace: str | None, to_affix: str
    ) -> tuple[list[ET.Element], Json]:
        """Encrypts body for recipients (+ our other devices); returns the
        <encrypted/> elements and the done fields describing them."""
        sm = await self.session_manager()
        order = self.selected(namespace)
        plaintexts = {
            ns: envelope(body, self.me, to_affix) if ns == TWOMEMO_NS else body.encode("utf-8")
            for ns in order
        }
        messages, errors = await sm.encrypt(
            frozenset(recipients), plaintexts, backend_priority_order=order
        )
        elements: list[ET.Element] = []
        used: list[str] = []
        keys: list[Json] = []
        for message in sorted(messages, key=lambda m: order.index(m.namespace)):
            if message.namespace == TWOMEMO_NS:
                elements.append(twomemo.etree.serialize_message(message))
            else:
                elements.append(oldmemo.etree.serialize_message(message))
            used.append(SHORT[message.namespace])
            for material, kex in message.keys:
                keys.append(
                    {
                        "jid": material.bare_jid,
                        "device_id": material.device_id,
                        "namespace": SHORT[message.namespace],
                        "kex": kex is not None,
                    }
                )
        if not elements:
            raise RuntimeError(
                "nothing to send: no device to encrypt for "
                f"(errors: {[str(e.exception) for e in errors]})"
            )
        keys.sort(key=lambda k: (k["jid"], k["device_id"], k["namespace"]))
        info = {
            "namespace": used[0] if len(used) == 1 else None,
            "namespaces": used,
            "recipients": keys,
            "errors": [
                {
                    "jid": e.bare_jid,
                    "device_id": e.device_id,
                    "namespace": SHORT.get(e.namespace, e.namespace),
                    "message": f"{type(e.exception).__name__}: {e.exception}",
                }
                for e in errors
            ],
        }
        return elements, info

    def stanza(self, to: str, mtype: str, msg_id: str, fallback: str | None,
               elements: list[ET.Element], used: list[str]) -> Message:
        msg = self.xmpp.make_message(mto=JID(to), mtype=mtype)
        msg["id"] = msg_id
        msg.xml.append(msg.xml.makeelement(qname(SID_NS, "origin-id"), {"id": msg_id}))
        if fallback is not None:
            msg["body"] = fallback
        for el in elements:
            msg.xml.append(el)
        for short in used:
            msg.xml.append(
                msg.xml.makeelement(
                    qname(EME_NS, "encryption"), {"namespace": LONG[short], "name": "OMEMO"}
                )
            )
        msg.xml.append(msg.xml.makeelement(qname(HINTS_NS, "store"), {}))
        return msg

    # ----- incoming ----------------------------------------------------------

    def claim(self, msg: Message, carbon: str | None = None) -> bool:
        """Takes msg (to decrypt and report as omemo_*) if OMEMO is enabled and it
        carries an OMEMO element; peer.py then reports nothing else for it.
        Without omemo_enable the peer is a client without OMEMO: it sees the
        fallback body as a plain message."""
        if self.plugin is None or msg["type"] == "error":
            return False
        if not any(msg.xml.find(qname(ns, "encrypted")) is not None for ns in SHORT):
            return False
        self.incoming.put_nowait((msg, carbon))
        return True

    async def work(self) -> None:
        """Decrypts claimed messages one at a time, in arrival order."""
        while True:
            msg, carbon = await self.incoming.get()
            try:
                async with self.lock:
                    await self.decrypt_and_emit(msg, carbon=carbon)
            except Exception as exc:  # reported, never dropped
                log.debug("decryption failed", exc_info=True)
                self.emit_error(msg, exc, carbon=carbon)

    def base_fields(self, msg: Message, carbon: str | None, mam: Json | None) -> Json:
        xml = msg.xml
        origin = xml.find(qname(SID_NS, "origin-id"))
        fields: Json = {
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "id": text_or_none(msg["id"]),
            "origin_id": origin.get("id") if origin is not None else None,
            "type": msg["type"],
            "carbon": carbon,
            "delay": xml.find(qname(DELAY_NS, "delay")) is not None,
        }
        if msg["type"] == "groupchat":
            fields["room"] = str(msg["from"].bare)
            fields["nick"] = msg["from"].resource or None
        if mam is not None:
            fields["mam"] = mam
        return fields

    def emit_error(self, msg: Message, exc: BaseException, carbon: str | None = None,
                   mam: Json | None = None) -> None:
        fields = self.base_fields(msg, carbon, mam)
        namespaces = [SHORT[ns] for ns in SHORT if msg.xml.find(qname(ns, "encrypted")) is not None]
        sid = None
        for ns in SHORT:
            header = msg.xml.find(f"{qname(ns, 'encrypted')}/{qname(ns, 'header')}")
            if header is not None and (header.get("sid") or "").isdigit():
                sid = int(header.get("sid"))
                break
        fields.update(
            namespaces=namespaces,
            device_id=sid,
            error=type(exc).__name__,
            message=f"{type(exc).__name__}: {exc}",
        )
        self.emit("omemo_error", **fields)

    def sender_of(self, msg: Message) -> str:
        """The real bare JID behind msg (the occupant's, for group chat)."""
        if msg["type"] != "groupchat":
            return str(msg["from"].bare)
        room = getattr(self.xmpp, "muc_rooms", {}).get(str(msg["from"].bare))
        nick = msg["from"].resource
        occupant = room.occupants.get(nick) if room is not None else None
        if occupant is None or not occupant.jid:
            raise SenderNotFound(
                f"no real JID known for {msg['from']} (not an occupant we saw, or the room is "
                "anonymous)"
            )
        return str(JID(occupant.jid).bare)

    def expected_to(self, msg: Message) -> str:
        if msg["type"] == "groupchat":
            return str(msg["from"].bare)
        return str(msg["to"].bare) if msg["to"] else self.me

    async def decrypt_and_emit(self, msg: Message, carbon: str | None = None,
                               mam: Json | None = None) -> None:
        sm = await self.session_manager()
        loaded = self.loaded()
        fields = self.base_fields(msg, carbon, mam)
        fallback = msg.xml.find(qname(msg.namespace, "body"))
        fields["fallback_body"] = (fallback.text or "") if fallback is not None else None

        # Our own groupchat message, reflected by the room.
        if msg["type"] == "groupchat":
            room = getattr(self.xmpp, "muc_rooms", {}).get(str(msg["from"].bare))
            msg_id = text_or_none(msg["id"])
            if (
                room is not None
                and msg["from"].resource == room.nick
                and msg_id is not None
                and msg_id in self.muc_sent
            ):
                own, _ = await sm.get_own_device_information()
                short, body = self.muc_sent.pop(msg_id)
                fields.update(
                    body=body,
                    namespace=short,
                    device_id=own.device_id,
                    sender=self.me,
                    fingerprint=fingerprint(own.identity_key),
                    trust=None,
                    sce=None,
                    reflection=True,
                )
                self.emit("omemo_message", **fields)
                return

        sender = self.sender_of(msg)
        if carbon is None and mam is None and msg["from"] == self.xmpp.boundjid:
            # The server's copy of our own stanza to our bare JID (python-omemo sends
            # its empty key-exchange completions to every device of a JID, ours
            # included, and Prosody delivers those to all resources): not for us.
            log.debug("ignoring our own OMEMO message %s", msg["id"])
            return
        element = None
        namespace = None
        for ns in DEFAULT_NAMESPACES:  # twomemo wins when both are present
            el = msg.xml.find(qname(ns, "encrypted"))
            if el is not None and ns in loaded:
                element, namespace = el, ns
                break
        if element is None or namespace is None:
            present = [SHORT[ns] for ns in SHORT if msg.xml.find(qname(ns, "encrypted")) is not None]
            raise ValueError(
                f"encrypted only in {present}, but this peer loads {[SHORT[n] for n in loaded]}"
            )
        if namespace == TWOMEMO_NS:
            message = twomemo.etree.parse_message(element, sender)
        else:
            message = await oldmemo.etree.parse_message(element, sender, self.me, sm)
        try:
            plaintext, device, _ = await sm.decrypt(message)
        except MessageNotForUs:
            own, _ = await sm.get_own_device_information()
            raise MessageNotForUs(
                f"no key for our device {own.device_id} in this {SHORT[namespace]} message"
            ) from None
        fields.update(
            namespace=SHORT[namespace],
            device_id=device.device_id,
            sender=sender,
            fingerprint=fingerprint(device.identity_key),
            trust=device.trust_level_name,
        )
        if plaintext is None:
            # An empty OMEMO message: key exchange completion or heartbeat.
            fields.pop("fallback_body", None)
            self.emit("omemo_empty", **fields)
            return
        sce = None
        if namespace == TWOMEMO_NS:
            body, sce = parse_envelope(plaintext)
            if sce["from"] is not None and JID(sce["from"]).bare != sender:
                raise ValueError(f"SCE <from/> is {sce['from']}, but the sender is {sender}")
            expected = self.expected_to(msg)
            if sce["to"] is not None and JID(sce["to"]).bare != expected:
                raise ValueError(f"SCE <to/> is {sce['to']}, but the message went to {expected}")
            if msg["type"] == "groupchat" and sce["to"] is None:
                raise ValueError("group chat SCE envelope without the required <to/> affix")
        else:
            body = plaintext.decode("utf-8")
        fields.update(body=body, sce=sce, reflection=False)
        self.emit("omemo_message", **fields)

    # ----- commands ----------------------------------------------------------

    async def omemo_enable(self, cmd: Json, done: Json) -> None:
        if self.plugin is not None:
            raise ValueError("OMEMO is already enabled")
        names = cmd.get("namespaces") or [SHORT[ns] for ns in DEFAULT_NAMESPACES]
        namespaces = [namespace_of(n) for n in names]
        if not namespaces:
            raise ValueError("namespaces is empty")
        self.xmpp.register_plugin(
            "xep_0384",
            {
                "storage_path": cmd.get("storage"),
                "namespaces": namespaces,
                "label": cmd.get("label"),
                "on_blind_trust": self.on_blind_trust,
                "lock": self.lock,
            },
        )
        self.plugin = self.xmpp.plugin["xep_0384"]
        try:
            sm = await self.plugin.get_session_manager()
        except Exception:
            self.plugin = None
            raise
        self.worker = asyncio.ensure_future(self.work())
        # New +notify features: recompute caps, re-announce, and wait (two round
        # trips) until the server has our presence and, if it asked, our caps, so
        # device list notifications reach us from now on.
        caps = self.xmpp.plugin.get("xep_0115", None)
        if caps is not None:
            await caps.update_caps(broadcast=False)
        self.xmpp.send_presence()
        for _ in range(2):
            await self.xmpp.plugin["xep_0199"].ping(timeout=self.iq_timeout)
        own, _ = await sm.get_own_device_information()
        done.update(await self.own_info(sm, own))

    async def own_info(self, sm: SessionManager, own: DeviceInformation) -> Json:
        plugin = self.enabled()
        return {
            "jid": self.me,
            "device_id": own.device_id,
            "fingerprint": fingerprint(own.identity_key),
            "identity_key": base64.b64encode(own.identity_key).decode("ascii"),
            "namespaces": [SHORT[ns] for ns in self.loaded()],
            "label": own.label,
            "bundles": {
                SHORT[b.namespace]: bundle_summary(
                    b.namespace, await b.get_bundle(self.me, own.device_id)
                )
                for b in plugin.backends
            },
        }

    async def omemo_send(self, cmd: Json, done: Json) -> None:
        to = str(JID(cmd["to"]).bare)
        mtype = cmd.get("type", "chat")
        msg_id = cmd.get("id") or uuid.uuid4().hex
        fallback = cmd.get("fallback", self.enabled().fallback_message)
        async with self.lock:
            if cmd.get("refresh", True):
                await self.refresh({to})
            elements, info = await self.encrypt({to}, cmd["body"], cmd.get("namespace"), to)
        self.stanza(to, mtype, msg_id, fallback, elements, info["namespaces"]).send()
        done.update(id=msg_id, **info)

    async def omemo_muc_send(self, cmd: Json, done: Json) -> None:
        room_jid = str(JID(cmd["room"]).bare)
        room = getattr(self.xmpp, "muc_rooms", {}).get(room_jid)
        if room is None or not room.joined:
            raise ValueError(f"not in room {room_jid}")
        msg_id = cmd.get("id") or uuid.uuid4().hex
        fallback = cmd.get("fallback", self.enabled().fallback_message)
        # XEP-0384: the recipients are the room's owners, admins and members
        # (Prosody lets members read these lists in members-only non-anonymous rooms).
        members: set[str] = set()
        for affiliation in MUC_RECIPIENT_AFFILIATIONS:
            jids = await self.xmpp.plugin["xep_0045"].get_affiliation_list(
                JID(room_jid), affiliation, timeout=self.iq_timeout
            )
            members.update(str(JID(j).bare) for j in jids)
        members.discard(self.me)
        skipped: list[str] = []
        async with self.lock:
            if cmd.get("refresh", True):
                await self.refresh(members)
            while True:
                try:
                    elements, info = await self.encrypt(
                        members, cmd["body"], cmd.get("namespace"), room_jid
                    )
                    break
                except NoEligibleDevices as exc:
                    # Members without OMEMO (in this namespace) cannot read it; say so.
                    if not cmd.get("skip_missing", True) or not exc.bare_jids:
                        raise
                    skipped.extend(sorted(exc.bare_jids))
                    members -= set(exc.bare_jids)
        self.muc_sent[msg_id] = (info["namespaces"][0], cmd["body"])
        self.stanza(room_jid, "groupchat", msg_id, fallback, elements, info["namespaces"]).send()
        done.update(id=msg_id, room=room_jid, members=sorted(members), skipped=skipped, **info)

    async def omemo_devices(self, cmd: Json, done: Json) -> None:
        jid = str(JID(cmd["jid"]).bare)
        sm = await self.session_manager()
        storage = self.enabled().storage
        async with self.lock:
            if cmd.get("refresh", True):
                for ns in self.loaded():
                    await sm.refresh_device_list(ns, jid)
            # The device lists as published (python-omemo keeps every id it has
            # seen, with an active flag per namespace).
            ids: dict[str, list[int]] = {SHORT[ns]: [] for ns in self.loaded()}
            for device_id in (await storage.load_list(f"/devices/{jid}/list", int)).maybe([]):
                active = (await storage.load_dict(f"/devices/{jid}/{device_id}/active", bool)).maybe({})
                for ns, is_active in active.items():
                    if is_active and SHORT.get(ns) in ids:
                        ids[SHORT[ns]].append(device_id)
            # Devices whose bundle could be fetched (identity key known).
            infos = await sm.get_device_information(jid)
        own_id = (await sm.get_own_device_information())[0].device_id if jid == self.me else None
        done.update(
            jid=jid,
            ids={k: sorted(v) for k, v in ids.items()},
            devices=[
                {
                    "device_id": d.device_id,
                    "namespaces": sorted(SHORT[ns] for ns, a in d.active if a and ns in SHORT),
                    "fingerprint": fingerprint(d.identity_key),
                    "trust": d.trust_level_name,
                    "label": d.label,
                    "own": d.device_id == own_id,
                }
                for d in sorted(infos, key=lambda d: d.device_id)
            ],
        )

    async def omemo_refresh(self, cmd: Json, done: Json) -> None:
        sm = await self.session_manager()
        plugin = self.enabled()
        async with self.lock:
            own, _ = await sm.get_own_device_information()
            before = (await self.own_info(sm, own))["bundles"]
            for backend in plugin.backends:
                await backend.rotate_signed_pre_key()
                missing = 100 - await backend.get_num_visible_pre_keys()
                if missing > 0:
                    await backend.generate_pre_keys(missing)
                await sm._upload_bundle(await backend.get_bundle(self.me, own.device_id))
            info = await self.own_info(sm, own)
        done.update(info, previous=before)

    async def omemo_trust(self, cmd: Json, done: Json) -> None:
        jid = str(JID(cmd["jid"]).bare)
        level = TrustLevel[str(cmd["trust"]).upper()]
        sm = await self.session_manager()
        async with self.lock:
            devices = await sm.get_device_information(jid)
            device = next((d for d in devices if d.device_id == int(cmd["device_id"])), None)
            if device is None:
                raise ValueError(f"unknown device {cmd['device_id']} of {jid}")
            await sm.set_trust(jid, device.identity_key, level.value)
        done.update(jid=jid, device_id=device.device_id, trust=level.value)

    async def omemo_mam(self, cmd: Json, done: Json) -> None:
        self.enabled()
        with_jid = JID(cmd["with"]) if cmd.get("with") else None
        count = decrypted = failed = 0
        async for res in self.xmpp.plugin["xep_0313"].iterate(
            with_jid=with_jid, rsm={"max": int(cmd.get("max", 50))}
        ):
            fwd = res["mam_result"]["forwarded"]
            inner = fwd["stanza"]
            stamp = fwd["delay"]["stamp"]
            mam = {
                "archive_id": res["mam_result"]["id"],
                "stamp": stamp.isoformat() if stamp else None,
            }
            if not any(inner.xml.find(qname(ns, "encrypted")) is not None for ns in SHORT):
                continue
            count += 1
            try:
                async with self.lock:
                    await self.decrypt_and_emit(inner, mam=mam)
                decrypted += 1
            except Exception as exc:
                failed += 1
                self.emit_error(inner, exc, mam=mam)
        done.update(count=count, decrypted=decrypted, failed=failed)
