#!/usr/bin/env python3
"""Creates rooms and fills their archives for the group chat benchmark (slixmpp 1.17).

Usage:
    PEER_PASSWORD=... python populate_rooms.py --jid bob@localhost --rooms r1@conf,r2@conf \
        --count N --port PORT --ca-file ca.crt [--create]

Logs in with STARTTLS (verified against --ca-file only), joins every room as "bench"
(with --create: makes each one persistent, so it outlives its occupants), sends COUNT
group chat messages to each ("room message {i}", distinct origin-ids) as fast as the
stream allows, then waits until the server has processed them all (a XEP-0199 ping round
trip) and leaves. Prints one JSON line {"rooms": R, "sent": total, "seconds": S}; on
failure {"error": ...} and a non-zero exit. The password comes from PEER_PASSWORD only.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import benchpeer
from slixmpp import JID

SID_NS = "urn:xmpp:sid:0"
MUC_NS = "http://jabber.org/protocol/muc"
TIMEOUT = 300.0


class Populator(benchpeer.Client):
    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password, ("xep_0030", "xep_0045", "xep_0004", "xep_0199"))
        self.add_event_handler("session_start", self.on_session_start)

    async def on_session_start(self, _event: Any) -> None:
        self.send_presence()
        self.online.set()


async def join(client: Populator, room: str) -> None:
    """Joins without history and waits for our own presence."""
    muc = client.plugin["xep_0045"]
    await asyncio.wait_for(
        muc.join_muc_wait(JID(room), "bench", maxstanzas=0, timeout=TIMEOUT), TIMEOUT
    )


async def make_persistent(client: Populator, room: str) -> None:
    form = client.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(
        var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/muc#roomconfig"
    )
    form.add_field(var="muc#roomconfig_persistentroom", ftype="boolean", value=True)
    await client.plugin["xep_0045"].set_room_config(JID(room), form)


async def run(args: Any, password: str) -> dict[str, Any]:
    client = Populator(args.jid, password)
    client.ca_certs = Path(args.ca_file)
    client.enable_plaintext = False
    client.enable_direct_tls = False
    client.enable_starttls = True
    client.connect(args.host, args.port)
    rooms = [r for r in args.rooms.split(",") if r]
    try:
        await asyncio.wait_for(client.online.wait(), TIMEOUT)
        if client.failed:
            raise RuntimeError(client.failed)
        started = time.monotonic()
        sent = 0
        for room in rooms:
            await join(client, room)
            if args.create:
                await make_persistent(client, room)
            for i in range(args.count):
                msg = client.make_message(mto=JID(room), mtype="groupchat", mbody=f"room message {i}")
                msg["id"] = f"bench-{room}-{i:05d}"
                msg.xml.append(msg.xml.makeelement(f"{{{SID_NS}}}origin-id", {"id": msg["id"]}))
                msg.send()
                sent += 1
                if i % 200 == 199:
                    await asyncio.sleep(0)
        # Barrier: the server answers the ping after it processed everything before it.
        await client.plugin["xep_0199"].ping(timeout=TIMEOUT)
        for room in rooms:
            client.plugin["xep_0045"].leave_muc(JID(room), "bench")
        await client.plugin["xep_0199"].ping(timeout=TIMEOUT)
        return {"rooms": len(rooms), "sent": sent, "seconds": time.monotonic() - started}
    finally:
        await benchpeer.disconnect(client, client.gone)


def main() -> int:
    p = benchpeer.parser(__doc__)
    p.add_argument("--rooms", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--create", action="store_true")
    return benchpeer.main(p.parse_args(), run)


if __name__ == "__main__":
    sys.exit(main())
