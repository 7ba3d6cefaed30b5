"""Small helpers shared by the benchmarks: percentiles, peak RSS, a session rig, child runs."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.loop import tune_for_serving
from sessions.engine import Engine, EngineSettings
from sessions.model import ChannelRef, CommandInvoked, Member, Message, MessageRef, Posted, ThreadRef
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore

ORGANISER = Member(platform="bench", user_id="org", display_name="Org", is_admin=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def plan(name: str, prompts: Sequence[str], recap: str = "+1h") -> Plan:
    return Plan(
        name=name,
        title=f"Bench plan {name}",
        intro="A benchmark session.",
        recap_at=parse_time(recap),
        prompts=tuple(PromptSpec(at=parse_time(at), text=f"Prompt {i + 1}: what did you learn?") for i, at in
                      enumerate(prompts)),
    )


@dataclass
class StampingPort:
    """A chat port that posts instantly and time-stamps each thread it opens (wall clock, s)."""

    platform: str = "bench"
    opened: list[tuple[float, str, ThreadRef]] = field(default_factory=list)
    _next: int = 0
    _by_key: dict[str, Posted] = field(default_factory=dict)

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return self._post(channel, key, thread=False)

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        posted = self._post(channel, key, thread=True)
        assert posted.thread is not None
        self.opened.append((time.time(), key, posted.thread))
        return posted

    def _post(self, channel: ChannelRef, key: str, *, thread: bool) -> Posted:
        self._next += 1
        message_id = f"m{self._next}"
        posted = Posted(
            message=MessageRef(channel=channel, message_id=message_id),
            thread=ThreadRef(channel=channel, thread_id=f"th-{message_id}") if thread else None,
        )
        self._by_key[key] = posted
        return posted

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        return self._by_key.get(key)


@dataclass
class Rig:
    store: SqliteStore
    port: StampingPort
    engine: Engine

    async def start_session(self, channel_id: str, plan_name: str) -> int:
        reply = await self.engine.on_command(
            CommandInvoked(
                channel=ChannelRef(platform=self.port.platform, channel_id=channel_id),
                member=ORGANISER,
                name="start",
                args=(plan_name,),
                at=datetime.now(UTC),
            )
        )
        if not reply.text.startswith("Started session #"):
            raise RuntimeError(f"could not start a session: {reply.text}")
        return int(reply.text.split("#", 1)[1].split(" ", 1)[0])

    async def threads(self, count: int, within: float = 10.0) -> list[ThreadRef]:
        """Wait until ``count`` prompt threads are open; the threads, in opening order."""
        deadline = time.monotonic() + within
        while len(self.port.opened) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self.port.opened)} of {count} prompt threads opened")
            await asyncio.sleep(0.005)
        return [thread for _, _, thread in self.port.opened[:count]]

    async def close(self) -> None:
        await self.engine.stop()
        await self.store.close()


async def open_rig(db_path: Path, plans: Sequence[Plan]) -> Rig:
    store = await SqliteStore.open(db_path)
    port = StampingPort()
    engine = Engine(
        store=store,
        ports={port.platform: port},
        plans=plans,
        settings=EngineSettings(default_plan=plans[0].name),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    await engine.start()
    tune_for_serving()  # as `popup run` does once started
    return Rig(store=store, port=port, engine=engine)


def raw_connection(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the store's pragmas (for baselines)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    return db


def emit(results: dict[str, Any]) -> None:
    """Hand results to a parent ``python -m bench`` (``--json PATH``), if there is one."""
    if "--json" in sys.argv:
        target = sys.argv[sys.argv.index("--json") + 1]
        Path(target).write_text(json.dumps(results), encoding="utf-8")


def flag(name: str, default: int) -> int:
    """``--name N`` from the command line, for trying a benchmark at other sizes."""
    option = f"--{name}"
    if option in sys.argv:
        return int(sys.argv[sys.argv.index(option) + 1])
    return default


def environ_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))
