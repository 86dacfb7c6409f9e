#!/usr/bin/env python3
"""An independent XMPP peer for Starling's integration tests (slixmpp 1.17).

Usage:
    PEER_PASSWORD=... python peer.py --jid user@localhost --host 127.0.0.1 \
        --port N --ca-file ca.crt [--direct-tls] [--resource R] [--auto-approve]

The password is read from the environment variable PEER_PASSWORD, never argv.
TLS is always on and verified against --ca-file only (STARTTLS by default,
direct TLS with --direct-tls).

Protocol: one JSON object per line on stdin (commands) and stdout (events).
Every command may carry an optional "tag" which is echoed in its "done" event.
Every command ends with exactly one {"event":"done","cmd":CMD,...} event on
success, or one {"event":"error","cmd":CMD,"message":...} event on failure, so
callers can wait for completion instead of sleeping.

Commands:
  {"cmd":"send","to":JID,"body":TEXT,"id":ID?,"receipt":bool?,"markable":bool?,
   "type":"chat"?}
      -> {"event":"sent","id":ID} then {"event":"done","cmd":"send","id":ID}
  {"cmd":"correct","to":JID,"body":TEXT,"replace":ORIGINAL_ID,"id":ID?}
      -> sent + done (id = the correction's own id)
  {"cmd":"displayed","to":JID,"id":ID}          XEP-0333 displayed marker
  {"cmd":"chatstate","to":JID,"state":"composing"|"active"|"paused"|...}
  {"cmd":"roster_add","jid":JID,"name":NAME?}   roster set + subscribe
  {"cmd":"approve","jid":JID}                   presence type=subscribed
  {"cmd":"presence","show":S?,"status":T?}      (re)send own presence
  {"cmd":"mam","with":JID?,"max":N?}            query own archive
      -> {"event":"mam_message",...}* then {"event":"mam_done","count":N}
         then done
  {"cmd":"ping"}                                XEP-0199 ping to the server;
      a barrier: every stanza sent before it has been processed by the server
  {"cmd":"raw","xml":STRING}                    send STRING verbatim
  {"cmd":"quit"}                                disconnect and exit 0
stdin EOF behaves like quit.

Events (besides the above):
  {"event":"online","jid":FULLJID}
  {"event":"message","from","to","id","origin_id","stanza_id","body","type",
   "replace"?,"receipt_request","markable","delay","thread"?}
  {"event":"receipt","from","id"}
  {"event":"displayed","from","id"} / {"event":"marker_received","from","id"}
  {"event":"chatstate","from","state"}
  {"event":"subscribe","from"}
  {"event":"presence","from","type","show"?,"status"?}
  {"event":"carbon_sent"|"carbon_received","from","to","id","origin_id","body"}
  {"event":"message_error","from","id","condition","text"}
  {"event":"resumed"}                           stream management resumption
  {"event":"error","message",...}
  {"event":"disconnected"}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import slixmpp
from slixmpp import JID
from slixmpp.stanza import Message, Presence

SID_NS = "urn:xmpp:sid:0"
DELAY_NS = "urn:xmpp:delay"
HINTS_NS = "urn:xmpp:hints"
CHAT_STATES = ("active", "composing", "paused", "inactive", "gone")


def emit(event: str, **fields: Any) -> None:
    """Write one event as a JSON line on stdout, flushed."""
    obj = {"event": event}
    obj.update(fields)
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def text_or_none(value: Any) -> str | None:
    s = str(value) if value is not None else ""
    return s if s else None


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, auto_approve: bool) -> None:
        super().__init__(jid, password)
        self.quitting = False
        self.exit_code = 0
        self.online = asyncio.Event()
        self.gone = asyncio.Event()

        for plugin in (
            "xep_0030",  # service discovery
            "xep_0059",  # result set management (MAM paging)
            "xep_0085",  # chat states
            "xep_0184",  # delivery receipts
            "xep_0198",  # stream management
            "xep_0199",  # ping
            "xep_0203",  # delayed delivery
            "xep_0280",  # carbons
            "xep_0297",  # forwarding
            "xep_0308",  # last message correction
            "xep_0313",  # MAM
            "xep_0333",  # chat markers
            "xep_0334",  # processing hints
            "xep_0359",  # unique and stable ids
        ):
            self.register_plugin(plugin)
        try:  # optional: entity capabilities
            self.register_plugin("xep_0115")
        except Exception as exc:  # pragma: no cover - depends on install
            logging.warning("xep_0115 not available: %s", exc)
        self.plugin["xep_0184"].auto_ack = True
        self.plugin["xep_0184"].auto_request = False

        # Subscriptions are decided by the test ("approve"), unless asked.
        self.roster.auto_authorize = True if auto_approve else None
        self.roster.auto_subscribe = False

        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("session_resumed", lambda _e: emit("resumed"))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("receipt_received", self.on_receipt)
        self.add_event_handler("marker_displayed", self.on_displayed)
        self.add_event_handler("marker_received", self.on_marker_received)
        self.add_event_handler("chatstate", self.on_chatstate)
        self.add_event_handler("carbon_received", self.on_carbon_received)
        self.add_event_handler("carbon_sent", self.on_carbon_sent)
        self.add_event_handler("message_error", self.on_message_error)
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("disconnected", self.on_disconnected)

    # ----- lifecycle -------------------------------------------------------

    async def on_session_start(self, _event: Any) -> None:
        try:
            await self.get_roster()
            await self.plugin["xep_0280"].enable()
            self.send_presence()
        except Exception as exc:
            emit("error", message=f"session start failed: {exc!r}")
        emit("online", jid=str(self.boundjid.full))
        self.online.set()

    def on_failed_auth(self, _event: Any) -> None:
        emit("error", message="authentication failed")
        self.fatal()

    def on_connection_failed(self, exc: Any) -> None:
        emit("error", message=f"connection failed: {exc}")
        self.fatal()

    def fatal(self) -> None:
        self.exit_code = 1
        self.quitting = True
        self.abort()
        self.gone.set()

    def on_disconnected(self, _reason: Any) -> None:
        emit("disconnected")
        if not self.quitting:
            self.exit_code = 1
        self.gone.set()

    # ----- incoming --------------------------------------------------------

    def stanza_id_for_me(self, msg: Message) -> str | None:
        me = self.boundjid.bare
        for el in msg.xml.findall(f"{{{SID_NS}}}stanza-id"):
            if el.get("by") == me:
                return el.get("id")
        return None

    def on_message(self, msg: Message) -> None:
        if msg["type"] == "error":
            return  # reported by on_message_error
        replace = msg.xml.find("{urn:xmpp:message-correct:0}replace")
        origin = msg.xml.find(f"{{{SID_NS}}}origin-id")
        emit(
            "message",
            **{
                "from": str(msg["from"]),
                "to": str(msg["to"]),
                "id": text_or_none(msg["id"]),
                "origin_id": origin.get("id") if origin is not None else None,
                "stanza_id": self.stanza_id_for_me(msg),
                "type": msg["type"],
                "body": msg["body"],
                "replace": replace.get("id") if replace is not None else None,
                "receipt_request": msg.xml.find("{urn:xmpp:receipts}request")
                is not None,
                "markable": msg.xml.find("{urn:xmpp:chat-markers:0}markable")
                is not None,
                "delay": msg.xml.find(f"{{{DELAY_NS}}}delay") is not None,
                "thread": text_or_none(msg["thread"]),
            },
        )

    def on_receipt(self, msg: Message) -> None:
        emit("receipt", **{"from": str(msg["from"]), "id": msg["receipt"]})

    def on_displayed(self, msg: Message) -> None:
        emit("displayed", **{"from": str(msg["from"]), "id": msg["displayed"]["id"]})

    def on_marker_received(self, msg: Message) -> None:
        emit(
            "marker_received",
            **{"from": str(msg["from"]), "id": msg["received"]["id"]},
        )

    def on_chatstate(self, msg: Message) -> None:
        emit("chatstate", **{"from": str(msg["from"]), "state": msg["chat_state"]})

    def carbon_fields(self, inner: Message) -> dict[str, Any]:
        origin = inner.xml.find(f"{{{SID_NS}}}origin-id")
        return {
            "from": str(inner["from"]),
            "to": str(inner["to"]),
            "id": text_or_none(inner["id"]),
            "origin_id": origin.get("id") if origin is not None else None,
            "body": inner["body"] or None,
        }

    def on_carbon_received(self, msg: Message) -> None:
        emit("carbon_received", **self.carbon_fields(msg["carbon_received"]))

    def on_carbon_sent(self, msg: Message) -> None:
        emit("carbon_sent", **self.carbon_fields(msg["carbon_sent"]))

    def on_message_error(self, msg: Message) -> None:
        emit(
            "message_error",
            **{
                "from": str(msg["from"]),
                "id": text_or_none(msg["id"]),
                "condition": msg["error"]["condition"],
                "text": msg["error"]["text"],
            },
        )

    def on_presence(self, pres: Presence) -> None:
        fields: dict[str, Any] = {
            "from": str(pres["from"]),
            "type": pres.xml.get("type", "available"),
        }
        if pres["show"]:
            fields["show"] = pres["show"]
        if pres["status"]:
            fields["status"] = pres["status"]
        emit("presence", **fields)

    def on_subscribe(self, pres: Presence) -> None:
        emit("subscribe", **{"from": str(pres["from"].bare)})

    # ----- commands --------------------------------------------------------

    def new_message(self, to: str, mtype: str = "chat", msg_id: str | None = None) -> Message:
        msg = self.make_message(mto=JID(to), mtype=mtype)
        msg["id"] = msg_id or uuid.uuid4().hex
        origin = msg.xml.makeelement(f"{{{SID_NS}}}origin-id", {"id": msg["id"]})
        msg.xml.append(origin)
        return msg

    async def run_command(self, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        done: dict[str, Any] = {"cmd": name}
        if "tag" in cmd:
            done["tag"] = cmd["tag"]

        if name == "send":
            msg = self.new_message(cmd["to"], cmd.get("type", "chat"), cmd.get("id"))
            msg["body"] = cmd["body"]
            if cmd.get("receipt"):
                msg["request_receipt"] = True
            if cmd.get("markable"):
                msg.enable("markable")
            if cmd.get("state"):
                msg["chat_state"] = cmd["state"]
            msg.send()
            emit("sent", id=msg["id"])
            done["id"] = msg["id"]
        elif name == "correct":
            msg = self.new_message(cmd["to"], "chat", cmd.get("id"))
            msg["body"] = cmd["body"]
            msg["replace"]["id"] = cmd["replace"]
            if cmd.get("receipt"):
                msg["request_receipt"] = True
            msg.send()
            emit("sent", id=msg["id"])
            done["id"] = msg["id"]
        elif name == "displayed":
            msg = self.make_message(mto=JID(cmd["to"]), mtype="chat")
            msg["displayed"]["id"] = cmd["id"]
            msg.xml.append(msg.xml.makeelement(f"{{{HINTS_NS}}}store", {}))
            msg.send()
            done["id"] = cmd["id"]
        elif name == "chatstate":
            state = cmd.get("state", "composing")
            if state not in CHAT_STATES:
                raise ValueError(f"unknown chat state {state!r}")
            msg = self.make_message(mto=JID(cmd["to"]), mtype="chat")
            msg["chat_state"] = state
            msg.send()
        elif name == "roster_add":
            jid = JID(cmd["jid"])
            kwargs: dict[str, Any] = {}
            if cmd.get("name"):
                kwargs["name"] = cmd["name"]
            await self.update_roster(jid, **kwargs)
            self.send_presence_subscription(pto=jid, ptype="subscribe")
        elif name == "approve":
            self.send_presence(pto=JID(cmd["jid"]).bare, ptype="subscribed")
        elif name == "presence":
            self.send_presence(pshow=cmd.get("show"), pstatus=cmd.get("status"))
        elif name == "mam":
            with_jid = JID(cmd["with"]) if cmd.get("with") else None
            count = 0
            async for res in self.plugin["xep_0313"].iterate(
                with_jid=with_jid, rsm={"max": int(cmd.get("max", 50))}
            ):
                fwd = res["mam_result"]["forwarded"]
                inner = fwd["stanza"]
                origin = inner.xml.find(f"{{{SID_NS}}}origin-id")
                replace = inner.xml.find("{urn:xmpp:message-correct:0}replace")
                stamp = fwd["delay"]["stamp"]
                emit(
                    "mam_message",
                    **{
                        "archive_id": res["mam_result"]["id"],
                        "from": str(inner["from"]),
                        "to": str(inner["to"]),
                        "id": text_or_none(inner["id"]),
                        "origin_id": origin.get("id") if origin is not None else None,
                        "body": inner["body"] or None,
                        "replace": replace.get("id") if replace is not None else None,
                        "stamp": stamp.isoformat() if stamp else None,
                    },
                )
                count += 1
            emit("mam_done", count=count)
            done["count"] = count
        elif name == "ping":
            await self.plugin["xep_0199"].ping(timeout=10)
        elif name == "raw":
            self.send_raw(cmd["xml"])
        else:
            raise ValueError(f"unknown command {name!r}")
        emit("done", **done)


async def read_commands(peer: Peer) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return  # EOF: quit
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("command must be a JSON object")
        except ValueError as exc:
            emit("error", message=f"bad command line: {exc}")
            continue
        if cmd.get("cmd") == "quit":
            return
        # Commands run in order; a slow one (mam) blocks the next ones,
        # which keeps the event stream easy to reason about.
        await peer.online.wait()
        try:
            await peer.run_command(cmd)
        except Exception as exc:
            err: dict[str, Any] = {"cmd": cmd.get("cmd"), "message": f"{type(exc).__name__}: {exc}"}
            if "tag" in cmd:
                err["tag"] = cmd["tag"]
            emit("error", **err)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jid", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--direct-tls", action="store_true")
    parser.add_argument("--resource")
    parser.add_argument("--auto-approve", action="store_true")
    args = parser.parse_args()

    password = os.environ.get("PEER_PASSWORD")
    if password is None:
        emit("error", message="PEER_PASSWORD is not set")
        return 2
    ca_file = Path(args.ca_file)
    if not ca_file.is_file():
        emit("error", message=f"CA file not found: {ca_file}")
        return 2

    jid = JID(args.jid)
    if args.resource:
        jid.resource = args.resource
    peer = Peer(str(jid), password, args.auto_approve)
    peer.ca_certs = ca_file
    peer.enable_plaintext = False
    peer.enable_direct_tls = args.direct_tls
    peer.enable_starttls = not args.direct_tls

    peer.connect(args.host, args.port)
    commands = asyncio.ensure_future(read_commands(peer))
    gone = asyncio.ensure_future(peer.gone.wait())
    await asyncio.wait({commands, gone}, return_when=asyncio.FIRST_COMPLETED)

    if commands.done():
        exc = commands.exception()
        if exc is not None:
            emit("error", message=f"command reader failed: {exc!r}")
        if not peer.gone.is_set():
            peer.quitting = True
            peer.disconnect(wait=2.0)
            try:
                await asyncio.wait_for(gone, timeout=5)
            except asyncio.TimeoutError:
                peer.abort()
    else:
        commands.cancel()
    gone.cancel()
    return peer.exit_code


if __name__ == "__main__":
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if os.environ.get("PEER_DEBUG") == "1" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(main()))
