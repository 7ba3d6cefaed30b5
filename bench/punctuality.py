"""Punctuality: how late prompts are posted against their planned time, idle and while ingesting.

20 sessions in 20 channels, 10 prompts each at "+1s" … "+10s": 200 prompts due over ~10 s. The
port time-stamps every ``open_thread`` call; lateness = that stamp - the prompt's ``due_at`` in the
database. Measured twice in the same run: with an idle loop (the scheduler's own floor) and while
500 members reply as fast as they can through the real ingest path (closed loop) in another session.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Rig, emit, open_rig, percentile, plan
from bench.ingest import MEMBERS, PROMPTS, TEXT, bench_plan
from bot.loop import run as run_loop
from sessions.model import Member, MessageRef, ReplyPosted, ThreadRef

SESSIONS = 20
PER_SESSION = 10


async def _load(rig: Rig, threads: list[ThreadRef], concurrency: int, stop: asyncio.Event) -> int:
    """Closed-loop ingest until ``stop``; how many replies were stored."""
    counter = itertools.count()
    on_event = rig.engine.on_event
    members = [Member(platform="bench", user_id=f"U{i:05d}", display_name=f"Member {i}") for i in range(MEMBERS)]
    done = 0

    async def member() -> None:
        nonlocal done
        while not stop.is_set():
            i = next(counter)
            thread = threads[i % len(threads)]
            await on_event(
                ReplyPosted(
                    thread=thread,
                    message=MessageRef(channel=thread.channel, message_id=f"L{i}"),
                    author=members[i % MEMBERS],
                    text=f"{TEXT}#{i}",
                    at=datetime.now(UTC),
                )
            )
            done += 1

    await asyncio.gather(*(member() for _ in range(concurrency)))
    return done


async def _measure(
    folder: Path, name: str, *, load: bool, sessions: int, concurrency: int, per_session: int = PER_SESSION
) -> dict[str, Any]:
    timed = plan("timed", [f"+{s}s" for s in range(1, per_session + 1)], recap="+1h")
    rig = await open_rig(folder / f"{name}.db", [bench_plan(), timed])
    try:
        stop = asyncio.Event()
        loader: asyncio.Task[int] | None = None
        if load:
            await rig.start_session("C-load", "ingest")
            threads = await rig.threads(PROMPTS)
            loader = asyncio.create_task(_load(rig, threads, concurrency, stop))
            await asyncio.sleep(0.5)  # let the load settle before anything falls due
        first = len(rig.port.opened)
        ids = [await rig.start_session(f"C{k}", "timed") for k in range(sessions)]
        expected = first + sessions * per_session
        while len(rig.port.opened) < expected:
            await asyncio.sleep(0.05)
        ingested = 0
        if loader is not None:
            stop.set()
            ingested = await loader
        due: dict[tuple[int, int], float] = {}
        for session_id in ids:
            for prompt in await rig.store.prompts(session_id):
                due[(session_id, prompt.position)] = prompt.due_at.timestamp()
        lateness = []
        for stamp, key, _ in rig.port.opened[first:]:
            # key: popup:{session}:{started}:prompt:{position}
            parts = key.split(":")
            lateness.append(stamp - due[(int(parts[1]), int(parts[4]))])
        return {
            "prompts": len(lateness),
            "p50_ms": percentile(lateness, 50) * 1000,
            "p99_ms": percentile(lateness, 99) * 1000,
            "max_ms": max(lateness) * 1000,
            "min_ms": min(lateness) * 1000,
            "ingested": ingested,
        }
    finally:
        await rig.close()


async def run_async(sessions: int, concurrency: int, per_session: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="popup-bench-punctuality-") as tmp:
        figures = {
            name: await _measure(
                Path(tmp), name, load=name == "loaded", sessions=sessions, concurrency=concurrency,
                per_session=per_session,
            )
            for name in ("idle", "loaded")
        }
    return {**figures, "p99_ms": figures["loaded"]["p99_ms"]}


def run(sessions: int = SESSIONS, concurrency: int = 500, per_session: int = PER_SESSION) -> dict[str, Any]:
    return run_loop(run_async(sessions, concurrency, per_session))


def report(r: dict[str, Any]) -> str:
    lines = ["punctuality: prompt post lateness against due time"]
    for name in ("idle", "loaded"):
        x = r[name]
        extra = f"; {x['ingested']:,} replies ingested meanwhile" if x["ingested"] else ""
        lines.append(
            f"  {name:<7} {x['prompts']} prompts: p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms, "
            f"max {x['max_ms']:.1f} ms{extra}"
        )
    return "\n".join(lines)


def main() -> None:
    results = run()
    print(report(results), flush=True)
    emit(results)


if __name__ == "__main__":
    main()
