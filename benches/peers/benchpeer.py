"""What the benchmark's slixmpp scripts share: JSON output, arguments, the main wrapper and
a polite disconnect. The password comes from PEER_PASSWORD only, never argv."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

import slixmpp


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def parser(doc: str) -> argparse.ArgumentParser:
    """Arguments every script takes: --jid, --host, --port, --ca-file."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--jid", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca-file", required=True)
    return p


def main(
    args: argparse.Namespace, run: Callable[[argparse.Namespace, str], Awaitable[dict[str, Any]]]
) -> int:
    """Checks the environment, runs `run`, prints its result (or the error) as one JSON line."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if os.environ.get("PEER_DEBUG") == "1" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    password = os.environ.get("PEER_PASSWORD")
    if not password:
        emit(error="PEER_PASSWORD is not set")
        return 2
    if not Path(args.ca_file).is_file():
        emit(error=f"CA file not found: {args.ca_file}")
        return 2
    try:
        result = asyncio.run(run(args, password))
    except Exception as exc:
        emit(error=f"{type(exc).__name__}: {exc}")
        return 1
    emit(**result)
    return 0


async def disconnect(client: Any, gone: asyncio.Event) -> None:
    """Disconnects politely, then gives up after a few seconds."""
    client.disconnect(wait=2.0)
    try:
        await asyncio.wait_for(gone.wait(), 5)
    except asyncio.TimeoutError:
        client.abort()


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records whether it came online, failed, or went away."""

    def __init__(self, jid: str, password: str, plugins: tuple[str, ...]) -> None:
        super().__init__(jid, password)
        for plugin in plugins:
            self.register_plugin(plugin)
        self.online = asyncio.Event()
        self.gone = asyncio.Event()
        self.failed: str | None = None
        self.add_event_handler("failed_all_auth", lambda _e: self.fail("authentication failed"))
        self.add_event_handler("connection_failed", lambda e: self.fail(f"connection failed: {e}"))
        self.add_event_handler("disconnected", lambda _e: self.gone.set())

    def fail(self, why: str) -> None:
        self.failed = why
        self.online.set()
        self.gone.set()
