#!/usr/bin/env python3
"""Fills an archive for the MAM benchmark (slixmpp 1.17).

Usage:
    PEER_PASSWORD=... python populate.py --jid bob@localhost --to alice@localhost \
        --count N --port PORT --ca-file ca.crt [--host 127.0.0.1]

Logs in with STARTTLS (verified against --ca-file only), sends COUNT chat messages
to --to as fast as the stream allows (bodies "archived message {i}", distinct ids),
then waits until the server has processed all of them: a XEP-0199 ping round trip
(the server handles one session's stanzas in order) and, with stream management
(XEP-0198), until the server acknowledged every stanza. Prints one JSON line
{"sent": N, "acked": bool, "seconds": S} on stdout and exits 0; on any failure it
prints {"error": ...} and exits non-zero. The password comes from PEER_PASSWORD only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any


import benchpeer
from slixmpp import JID

SID_NS = "urn:xmpp:sid:0"
TIMEOUT = 300.0


class Populator(benchpeer.Client):
    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password, ("xep_0030", "xep_0198", "xep_0199"))
        # Ask for an ack every 500 stanzas instead of every 5.
        self.plugin["xep_0198"].window = 500
        self.sm_enabled = asyncio.Event()
        self.all_acked = asyncio.Event()
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("sm_enabled", lambda _e: self.sm_enabled.set())
        self.add_event_handler("stanza_acked", self.on_acked)

    async def on_session_start(self, _event: Any) -> None:
        self.online.set()

    def on_acked(self, _stanza: Any) -> None:
        if not self.plugin["xep_0198"].unacked_queue:
            self.all_acked.set()


async def run(args: argparse.Namespace, password: str) -> dict[str, Any]:
    client = Populator(args.jid, password)
    client.ca_certs = Path(args.ca_file)
    client.enable_plaintext = False
    client.enable_direct_tls = False
    client.enable_starttls = True
    client.connect(args.host, args.port)
    try:
        await asyncio.wait_for(client.online.wait(), TIMEOUT)
        if client.failed:
            raise RuntimeError(client.failed)
        # Stream management is negotiated right after resource binding; give it a
        # bounded moment so every message is counted by it.
        try:
            await asyncio.wait_for(client.sm_enabled.wait(), 10)
        except asyncio.TimeoutError:
            pass
        started = time.monotonic()
        to = JID(args.to)
        for i in range(args.count):
            msg = client.make_message(mto=to, mtype="chat", mbody=f"archived message {i}")
            msg["id"] = f"bench-{i:06d}"
            msg.xml.append(msg.xml.makeelement(f"{{{SID_NS}}}origin-id", {"id": msg["id"]}))
            msg.send()
            if i % 200 == 199:
                await asyncio.sleep(0)  # let the writer drain the queue
        # Barrier: the server answers the ping after it processed everything before it.
        await client.plugin["xep_0199"].ping(timeout=TIMEOUT)
        acked = False
        if client.sm_enabled.is_set():
            sm = client.plugin["xep_0198"]
            if sm.unacked_queue:
                sm.request_ack()
                await asyncio.wait_for(client.all_acked.wait(), TIMEOUT)
            acked = True
        return {"sent": args.count, "acked": acked, "seconds": time.monotonic() - started}
    finally:
        await benchpeer.disconnect(client, client.gone)


def main() -> int:
    p = benchpeer.parser(__doc__)
    p.add_argument("--to", required=True)
    p.add_argument("--count", type=int, required=True)
    return benchpeer.main(p.parse_args(), run)


if __name__ == "__main__":
    sys.exit(main())
