"""`seqhub admin …`: operator commands — dead-letter queues here; accounts and clients from the auth commands.

`seqhub admin dlq list [QUEUE]` shows parked messages (all queues of the topology by default) without removing
them; `seqhub admin dlq replay QUEUE [--limit N]` puts them back on their queue with a fresh attempt count.
Both talk to the bus the services use (`SEQHUB_BUS_URL`, `SEQHUB_MONGO_URL` for the embedded bus).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from libs.common.bus import Bus, DeadLetter, create_bus
from libs.common.config import EMBEDDED_BUS, CommonSettings
from libs.common.db import mongo_client
from libs.common.topology import QUEUES
from libs.sdk.commands._support import print_table


def register(subparsers: Any, *, extra: Any = None) -> None:
    """Add the `admin` group; `extra(admin_subparsers)` lets other modules add their admin commands."""
    admin = subparsers.add_parser("admin", help="operator commands (dead letters, users, clients, tokens)")
    sub = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    dlq = sub.add_parser("dlq", help="inspect and replay dead-lettered events",
                         description="Dead-letter queues hold events whose handler kept failing.")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = dlq_sub.add_parser("list", help="show parked events without removing them")
    listing.add_argument("queue", nargs="?", choices=sorted(QUEUES), help="one queue (default: all)")
    listing.add_argument("--limit", type=int, default=50, help="per queue (default 50)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_list)
    replay = dlq_sub.add_parser("replay", help="send parked events back to their queue")
    replay.add_argument("queue", choices=sorted(QUEUES))
    replay.add_argument("--limit", type=int, default=None, help="at most N events (default: all)")
    replay.set_defaults(func=run_replay)
    if extra is not None:
        extra(sub)


async def _with_bus(action: Any) -> Any:
    settings = CommonSettings()
    if settings.bus_url != EMBEDDED_BUS:
        bus = create_bus(settings.bus, name="seqhub-admin")
        await bus.connect()
        try:
            return await action(bus)
        finally:
            await bus.close()
    async with mongo_client(settings.mongo_url, timeout_ms=5000, app_name="seqhub-admin") as client:
        bus = create_bus(settings.bus, name="seqhub-admin", database=client[settings.database_name("bus")])
        await bus.connect()
        try:
            return await action(bus)
        finally:
            await bus.close()


def run_list(args: argparse.Namespace) -> int:
    queues = [args.queue] if args.queue else sorted(QUEUES)

    async def action(bus: Bus) -> list[DeadLetter]:
        return [letter for q in queues for letter in await bus.dead_letters(q, args.limit)]

    letters: list[DeadLetter] = asyncio.run(_with_bus(action))
    if args.json:
        print(json.dumps([{"queue": d.queue, "event_id": d.event_id, "event_type": d.event_type,
                           "attempts": d.attempts, "reason": d.reason} for d in letters], indent=2))
        return 0
    if not letters:
        Console().print("no dead letters")
        return 0
    table = Table("queue", "event type", "event id", "attempts", "reason")
    for d in letters:
        table.add_row(d.queue, d.event_type or "?", d.event_id or "?", str(d.attempts), d.reason)
    print_table(table)
    return 0


def run_replay(args: argparse.Namespace) -> int:
    async def action(bus: Bus) -> int:
        return await bus.replay(args.queue, args.limit)

    count = asyncio.run(_with_bus(action))
    Console().print(f"replayed {count} event{'s' if count != 1 else ''} to {args.queue}")
    return 0
