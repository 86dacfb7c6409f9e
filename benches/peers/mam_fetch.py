#!/usr/bin/env python3
"""Fetches a whole MAM archive and stores it in SQLite: the slixmpp side of the
MAM catch-up benchmark (slixmpp 1.17).

Usage:
    PEER_PASSWORD=... python mam_fetch.py --jid alice@localhost --port PORT \
        --ca-file ca.crt --db archive.sqlite [--host 127.0.0.1] [--page-size 250]

Logs in with STARTTLS (verified against --ca-file only), queries its own archive
(XEP-0313) from the beginning with RSM paging (`after` = the last id of the previous
page) until the server says the result set is complete, and stores every message
(archive id, from, to, id, body, timestamp) in a fresh SQLite file, one transaction
per page. Prints one JSON line {"count": N, "pages": P, "seconds": S} on stdout and
exits 0; on any failure it prints {"error": ...} and exits non-zero. The password
comes from PEER_PASSWORD only.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any


import benchpeer

TIMEOUT = 300.0
SCHEMA = """
CREATE TABLE messages (
    archive_id TEXT PRIMARY KEY,
    from_jid TEXT NOT NULL,
    to_jid TEXT NOT NULL,
    stanza_id TEXT,
    body TEXT,
    timestamp TEXT
);
CREATE INDEX messages_peer ON messages(from_jid, timestamp);
"""


class Fetcher(benchpeer.Client):
    def __init__(self, jid: str, password: str) -> None:
        super().__init__(
            jid, password, ("xep_0030", "xep_0059", "xep_0297", "xep_0203", "xep_0313")
        )
        self.add_event_handler("session_start", lambda _e: self.online.set())


def open_db(path: Path) -> sqlite3.Connection:
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path, isolation_level=None)  # explicit transactions below
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db


def store_page(db: sqlite3.Connection, results: list[Any]) -> None:
    rows = []
    for res in results:
        fwd = res["mam_result"]["forwarded"]
        inner = fwd["stanza"]
        stamp = fwd["delay"]["stamp"]
        rows.append(
            (
                res["mam_result"]["id"],
                str(inner["from"]),
                str(inner["to"]),
                inner["id"] or None,
                inner["body"] or None,
                stamp.isoformat() if stamp else None,
            )
        )
    db.execute("BEGIN")
    try:
        db.executemany(
            "INSERT OR REPLACE INTO messages"
            " (archive_id, from_jid, to_jid, stanza_id, body, timestamp)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


async def fetch_all(client: Fetcher, db: sqlite3.Connection, page_size: int) -> int:
    mam = client.plugin["xep_0313"]
    after: str | None = None
    pages = 0
    while True:
        rsm: dict[str, Any] = {"max": page_size}
        if after is not None:
            rsm["after"] = after
        iq = await mam.retrieve(rsm=rsm, timeout=TIMEOUT)
        results = iq["mam"]["results"]
        pages += 1
        if results:
            store_page(db, results)
        fin = iq["mam_fin"]
        last = fin["rsm"]["last"]
        if fin["complete"] in ("true", "1", True) or not results or not last:
            return pages
        after = last


async def run(args: argparse.Namespace, password: str) -> dict[str, Any]:
    db = open_db(Path(args.db))
    client = Fetcher(args.jid, password)
    client.ca_certs = Path(args.ca_file)
    client.enable_plaintext = False
    client.enable_direct_tls = False
    client.enable_starttls = True
    started = time.monotonic()
    client.connect(args.host, args.port)
    try:
        await asyncio.wait_for(client.online.wait(), TIMEOUT)
        if client.failed:
            raise RuntimeError(client.failed)
        pages = await fetch_all(client, db, args.page_size)
        (count,) = db.execute("SELECT COUNT(*) FROM messages").fetchone()
        return {"count": count, "pages": pages, "seconds": time.monotonic() - started}
    finally:
        db.close()
        await benchpeer.disconnect(client, client.gone)


def main() -> int:
    p = benchpeer.parser(__doc__)
    p.add_argument("--db", required=True)
    p.add_argument("--page-size", type=int, default=250)
    return benchpeer.main(p.parse_args(), run)


if __name__ == "__main__":
    sys.exit(main())
