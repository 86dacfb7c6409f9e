"""PEP and social commands for the test peer (see peer.py for the protocol).

XEP-0060/0163 (PEP items, events, node creation), XEP-0277 (microblog posts
and comments as Atom entries), XEP-0084 (user avatar) and XEP-0172 (user
nick). Payloads are built and returned as raw XML; xep_0060 only does the IQ
mechanics. peer.py owns the connection and hands us its `emit`.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp import JID
from slixmpp.plugins.xep_0004 import Form
from slixmpp.xmlstream import tostring

PUBSUB_NS = "http://jabber.org/protocol/pubsub"
PUBSUB_EVENT_NS = "http://jabber.org/protocol/pubsub#event"
PUBLISH_OPTIONS_NS = "http://jabber.org/protocol/pubsub#publish-options"
ATOM_NS = "http://www.w3.org/2005/Atom"
XHTML_NS = "http://www.w3.org/1999/xhtml"
MICROBLOG_NODE = "urn:xmpp:microblog:0"
COMMENTS_NODE_PREFIX = "urn:xmpp:microblog:0:comments/"
AVATAR_DATA_NS = "urn:xmpp:avatar:data"
AVATAR_METADATA_NS = "urn:xmpp:avatar:metadata"
NICK_NS = "http://jabber.org/protocol/nick"
# Nodes we want PEP notifications for (advertised as NODE+notify).
NOTIFY_NODES = (MICROBLOG_NODE, AVATAR_METADATA_NS, NICK_NS)
OPEN_OPTIONS = {"pubsub#access_model": "open"}
BLOG_OPTIONS = {"pubsub#access_model": "open", "pubsub#max_items": "max"}
# The date in the tag: URIs of our Atom ids (tag:DOMAIN,2026:posts-ID).
TAG_DATE = "2026"
CONTENT_TYPES = ("text", "html", "xhtml")

Json = dict[str, Any]
Emit = Callable[..., None]
CommandHandler = Callable[[Json, Json], Awaitable[None]]


def qname(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def attr(el: ET.Element | None, name: str) -> str | None:
    return el.get(name) if el is not None else None


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_xml(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"{what} is not well-formed XML: {exc}") from None


def payload_json(item: ET.Element) -> Json:
    """One pubsub <item/> (pubsub or pubsub#event namespace) as JSON."""
    children = list(item)
    return {
        "id": item.get("id"),
        "publisher": item.get("publisher"),
        "xml": tostring(children[0]) if children else None,
    }


def image_info(data: bytes) -> tuple[str, int | None, int | None]:
    """MIME type from the magic bytes, and width/height where cheap (PNG, GIF)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", None, None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", None, None
    return "application/octet-stream", None, None


def text_el(parent: ET.Element, name: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, qname(ATOM_NS, name), attrs)
    el.text = text
    return el


class Social:
    """The PEP / microblog / avatar / nick commands and the pep_event event."""

    def __init__(self, xmpp: slixmpp.ClientXMPP, emit: Emit, iq_timeout: float) -> None:
        self.xmpp = xmpp
        self.emit = emit
        self.iq_timeout = iq_timeout

    @property
    def pubsub(self) -> Any:
        return self.xmpp.plugin["xep_0060"]

    def commands(self) -> dict[str, CommandHandler]:
        return {
            "pep_publish": self.pep_publish,
            "pep_retract": self.pep_retract,
            "pep_items": self.pep_items,
            "pep_subscribe": self.pep_subscribe,
            "pep_create": self.pep_create,
            "avatar_publish": self.avatar_publish,
            "avatar_fetch": self.avatar_fetch,
            "nick_publish": self.nick_publish,
            "blog_post": self.blog_post,
            "blog_comment": self.blog_comment,
        }

    # ----- incoming ----------------------------------------------------------

    def on_pubsub_event(self, sender: JID, event: ET.Element) -> None:
        """Emits pep_event for one <event xmlns=pubsub#event/> of a message."""
        items = event.find(qname(PUBSUB_EVENT_NS, "items"))
        purge = event.find(qname(PUBSUB_EVENT_NS, "purge"))
        delete = event.find(qname(PUBSUB_EVENT_NS, "delete"))
        node = attr(items, "node") or attr(purge, "node") or attr(delete, "node")
        if node is None:  # configuration / subscription notifications
            configuration = event.find(qname(PUBSUB_EVENT_NS, "configuration"))
            node = attr(configuration, "node")
        self.emit(
            "pep_event",
            **{
                "from": str(sender.bare),
                "node": node,
                "items": [
                    payload_json(item)
                    for item in (items if items is not None else [])
                    if item.tag == qname(PUBSUB_EVENT_NS, "item")
                ],
                "retracted": [
                    r.get("id")
                    for r in (items if items is not None else [])
                    if r.tag == qname(PUBSUB_EVENT_NS, "retract")
                ],
                "purged": purge is not None,
                "deleted": delete is not None,
            },
        )

    # ----- helpers -----------------------------------------------------------

    def form(self, options: Json, form_type: str | None) -> Form:
        form = self.xmpp.plugin["xep_0004"].make_form(ftype="submit")
        if form_type is not None:
            form.add_field(var="FORM_TYPE", ftype="hidden", value=form_type)
        for var, value in options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int):
                value = str(value)
            form.add_field(var=var, value=value)
        return form

    async def publish(
        self,
        node: str,
        payload: ET.Element,
        item_id: str | None = None,
        options: Json | None = None,
        to: str | None = None,
    ) -> str | None:
        """Publishes one item; returns the id the service reports (or ours)."""
        result = await self.pubsub.publish(
            JID(to).bare if to else self.xmpp.boundjid.bare,
            node,
            id=item_id,
            payload=payload,
            options=self.form(options, PUBLISH_OPTIONS_NS) if options else None,
            timeout=self.iq_timeout,
        )
        item = result.xml.find(
            f"{qname(PUBSUB_NS, 'pubsub')}/{qname(PUBSUB_NS, 'publish')}/{qname(PUBSUB_NS, 'item')}"
        )
        return attr(item, "id") or item_id

    async def items(self, jid: str, node: str, max_items: int | None = None) -> list[ET.Element]:
        result = await self.pubsub.get_items(
            JID(jid).bare, node, max_items=max_items, timeout=self.iq_timeout
        )
        items = result.xml.find(f"{qname(PUBSUB_NS, 'pubsub')}/{qname(PUBSUB_NS, 'items')}")
        return items.findall(qname(PUBSUB_NS, "item")) if items is not None else []

    def atom_entry(self, kind: str, entry_id: str, author_name: str | None = None) -> ET.Element:
        """An Atom entry with id, author (us) and published/updated = now."""
        me = self.xmpp.boundjid
        entry = ET.Element(qname(ATOM_NS, "entry"))
        text_el(entry, "id", f"tag:{me.domain},{TAG_DATE}:{kind}-{entry_id}")
        author = ET.SubElement(entry, qname(ATOM_NS, "author"))
        text_el(author, "name", author_name or me.user or me.bare)
        text_el(author, "uri", f"xmpp:{me.bare}")
        stamp = now_rfc3339()
        text_el(entry, "published", stamp)
        text_el(entry, "updated", stamp)
        return entry

    # ----- commands: generic PEP ---------------------------------------------

    async def pep_publish(self, cmd: Json, done: Json) -> None:
        payload = parse_xml(cmd["xml"], "xml")
        done["id"] = await self.publish(
            cmd["node"], payload, cmd.get("id"), cmd.get("options"), cmd.get("to")
        )
        done["node"] = cmd["node"]

    async def pep_retract(self, cmd: Json, done: Json) -> None:
        await self.pubsub.retract(
            JID(cmd["to"]).bare if cmd.get("to") else self.xmpp.boundjid.bare,
            cmd["node"],
            cmd["id"],
            notify=bool(cmd.get("notify", True)),
            timeout=self.iq_timeout,
        )
        done.update(node=cmd["node"], id=cmd["id"])

    async def pep_items(self, cmd: Json, done: Json) -> None:
        max_items = cmd.get("max")
        items = await self.items(
            cmd["jid"], cmd["node"], int(max_items) if max_items is not None else None
        )
        done.update(
            jid=str(JID(cmd["jid"]).bare),
            node=cmd["node"],
            items=[payload_json(item) for item in items],
        )

    async def pep_subscribe(self, cmd: Json, done: Json) -> None:
        result = await self.pubsub.subscribe(
            JID(cmd["jid"]).bare, cmd["node"], timeout=self.iq_timeout
        )
        sub = result.xml.find(
            f"{qname(PUBSUB_NS, 'pubsub')}/{qname(PUBSUB_NS, 'subscription')}"
        )
        done.update(node=cmd["node"], subscription=attr(sub, "subscription"))

    async def pep_create(self, cmd: Json, done: Json) -> None:
        options = cmd.get("options")
        await self.pubsub.create_node(
            JID(cmd["jid"]).bare if cmd.get("jid") else self.xmpp.boundjid.bare,
            cmd["node"],
            config=self.form(options, None) if options else None,
            timeout=self.iq_timeout,
        )
        done["node"] = cmd["node"]

    # ----- commands: avatar (XEP-0084) and nick (XEP-0172) --------------------

    async def avatar_publish(self, cmd: Json, done: Json) -> None:
        data = Path(cmd["file"]).read_bytes()
        sha1 = hashlib.sha1(data).hexdigest()
        mime, width, height = image_info(data)
        data_el = ET.Element(qname(AVATAR_DATA_NS, "data"))
        data_el.text = base64.b64encode(data).decode("ascii")
        await self.publish(AVATAR_DATA_NS, data_el, sha1, OPEN_OPTIONS)
        metadata = ET.Element(qname(AVATAR_METADATA_NS, "metadata"))
        info = {"id": sha1, "bytes": str(len(data)), "type": mime}
        if width is not None and height is not None:
            info.update(width=str(width), height=str(height))
        ET.SubElement(metadata, qname(AVATAR_METADATA_NS, "info"), info)
        await self.publish(AVATAR_METADATA_NS, metadata, sha1, OPEN_OPTIONS)
        done.update(id=sha1, type=mime, bytes=len(data), width=width, height=height)

    async def avatar_fetch(self, cmd: Json, done: Json) -> None:
        jid = str(JID(cmd["jid"]).bare)
        metadata_items = await self.items(jid, AVATAR_METADATA_NS, 1)
        if not metadata_items:
            raise ValueError(f"{jid} has no avatar metadata item")
        metadata = metadata_items[-1].find(qname(AVATAR_METADATA_NS, "metadata"))
        infos = metadata.findall(qname(AVATAR_METADATA_NS, "info")) if metadata is not None else []
        info = next((i for i in infos if not i.get("url")), None)
        if info is None:  # empty metadata: the avatar was disabled
            raise ValueError(f"{jid} advertises no in-band avatar")
        avatar_id = info.get("id", "")
        data_items = await self.pubsub.get_item(
            jid, AVATAR_DATA_NS, avatar_id, timeout=self.iq_timeout
        )
        data_el = data_items.xml.find(
            f"{qname(PUBSUB_NS, 'pubsub')}/{qname(PUBSUB_NS, 'items')}/"
            f"{qname(PUBSUB_NS, 'item')}/{qname(AVATAR_DATA_NS, 'data')}"
        )
        if data_el is None:
            raise ValueError(f"{jid} has no avatar data item {avatar_id}")
        b64 = "".join((data_el.text or "").split())
        data = base64.b64decode(b64)
        done.update(
            jid=jid,
            id=avatar_id,
            type=info.get("type"),
            bytes=len(data),
            advertised_bytes=int(info.get("bytes", "0") or 0),
            sha1_ok=hashlib.sha1(data).hexdigest() == avatar_id,
            b64=b64,
        )

    async def nick_publish(self, cmd: Json, done: Json) -> None:
        nick = ET.Element(qname(NICK_NS, "nick"))
        nick.text = cmd["nick"]
        done["id"] = await self.publish(NICK_NS, nick, cmd.get("id"), cmd.get("options"))

    # ----- commands: microblog (XEP-0277) ------------------------------------

    async def blog_post(self, cmd: Json, done: Json) -> None:
        post_id = cmd.get("id") or uuid.uuid4().hex
        content_type = cmd.get("content_type", "text")
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"unknown content_type {content_type!r}")
        me = self.xmpp.boundjid.bare
        entry = self.atom_entry("posts", post_id, cmd.get("author"))
        if cmd.get("title") is not None:
            text_el(entry, "title", cmd["title"], type="text")
        if content_type == "xhtml":
            content = ET.SubElement(entry, qname(ATOM_NS, "content"), {"type": "xhtml"})
            content.append(
                parse_xml(f"<div xmlns='{XHTML_NS}'>{cmd['content']}</div>", "xhtml content")
            )
        else:
            text_el(entry, "content", cmd["content"], type=content_type)
        for tag in cmd.get("tags") or []:
            ET.SubElement(entry, qname(ATOM_NS, "category"), {"term": tag})
        node_q = quote(MICROBLOG_NODE, safe="")
        ET.SubElement(
            entry,
            qname(ATOM_NS, "link"),
            {
                "rel": "alternate",
                "href": f"xmpp:{me}?;node={node_q};item={quote(post_id, safe='')}",
            },
        )
        if cmd.get("comments"):
            comments_q = quote(COMMENTS_NODE_PREFIX + post_id, safe="")
            ET.SubElement(
                entry,
                qname(ATOM_NS, "link"),
                {"rel": "replies", "title": "comments", "href": f"xmpp:{me}?;node={comments_q}"},
            )
        done["id"] = await self.publish(MICROBLOG_NODE, entry, post_id, BLOG_OPTIONS)
        done["atom_id"] = entry.findtext(qname(ATOM_NS, "id"))

    async def blog_comment(self, cmd: Json, done: Json) -> None:
        comment_id = cmd.get("id") or uuid.uuid4().hex
        entry = self.atom_entry("comments", comment_id)
        text_el(entry, "content", cmd["content"], type="text")
        node = COMMENTS_NODE_PREFIX + str(cmd["post"])
        done["id"] = await self.publish(node, entry, comment_id, None, cmd["jid"])
        done["node"] = node
