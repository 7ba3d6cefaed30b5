"""Ingest: replies through the real engine path into SQLite, against raw executemany.

The path measured is the one every adapter uses: ``Engine.on_event(ReplyPosted)`` → the prompt
thread's session lookup → ``store.add_reply`` → its COMMIT → the await returns (acknowledged means
durable). Baseline in the same run: plain ``sqlite3`` executemany of the same rows, with the same
statement and pragmas, in one transaction — the floor of this machine.

Figures: sustained replies/s with many concurrent members (closed loop), and at an offered load of
2,000 replies/s (open loop: arrivals follow a clock, never the previous reply) p50/p99/max latency
from the arrival moment to the on_event await returning.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Rig, emit, flag, open_rig, percentile, plan, raw_connection
from bot.loop import run as run_loop
from sessions.model import Member, MessageRef, ReplyPosted, ThreadRef

PROMPTS = 5
MEMBERS = 2_000
TEXT = "I learned that asking a question in the open helps the next person too; thanks all! "


def bench_plan() -> Any:
    return plan("ingest", ["+0s"] * PROMPTS)


async def fresh_rig(folder: Path, name: str) -> tuple[Rig, list[ThreadRef]]:
    rig = await open_rig(folder / f"{name}.db", [bench_plan()])
    await rig.start_session("C-ingest", "ingest")
    return rig, await rig.threads(PROMPTS)


def make_events(threads: Sequence[ThreadRef], count: int, *, start: int = 0) -> list[ReplyPosted]:
    members = [
        Member(platform=threads[0].channel.platform, user_id=f"U{i:05d}", display_name=f"Member {i}")
        for i in range(MEMBERS)
    ]
    now = datetime.now(UTC)
    events = []
    for i in range(start, start + count):
        thread = threads[i % len(threads)]
        events.append(
            ReplyPosted(
                thread=thread,
                message=MessageRef(channel=thread.channel, message_id=f"r{i}"),
                author=members[i % MEMBERS],
                text=f"{TEXT}#{i}",
                at=now,
            )
        )
    return events


async def closed_loop(rig: Rig, events: Sequence[ReplyPosted], concurrency: int) -> float:
    """Each of ``concurrency`` members sends its share back to back; replies/s."""
    on_event = rig.engine.on_event

    async def member(share: Sequence[ReplyPosted]) -> None:
        for event in share:
            await on_event(event)

    started = time.perf_counter()
    await asyncio.gather(*(member(events[k::concurrency]) for k in range(concurrency)))
    return len(events) / (time.perf_counter() - started)


async def open_loop(rig: Rig, events: Sequence[ReplyPosted], rate: float) -> list[float]:
    """Arrivals every 1/rate s on the loop's clock; latency (s) from arrival to durable commit."""
    loop = asyncio.get_running_loop()
    on_event = rig.engine.on_event
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def arrive(event: ReplyPosted, due: float) -> None:
        await on_event(event)
        latencies.append(loop.time() - due)

    begin = loop.time() + 0.05
    for index, event in enumerate(events):
        due = begin + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(arrive(event, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    return latencies


async def stored(rig: Rig) -> int:
    stats = await rig.store.session_stats(1)
    return stats.replies


def raw_rows(events: Sequence[ReplyPosted], session_id: int, prompt_ids: dict[str, int]) -> list[tuple[Any, ...]]:
    return [
        (
            session_id,
            prompt_ids[e.thread.thread_id],
            e.message.channel.platform,
            e.message.channel.channel_id,
            e.message.message_id,
            e.author.user_id,
            e.author.display_name,
            e.text,
            e.at.timestamp(),
        )
        for e in events
    ]


async def raw_baseline(folder: Path, name: str, events: Sequence[ReplyPosted]) -> float:
    """Rows/s of one executemany in one transaction, into the same schema (sessions, prompts)."""
    rig, threads = await fresh_rig(folder, name)
    targets = {t.thread_id: await rig.store.thread_target(t.channel.platform, t.thread_id) for t in threads}
    await rig.close()
    prompt_ids = {key: target.prompt_id for key, target in targets.items() if target is not None}
    rows = raw_rows(events, 1, prompt_ids)
    from storage.sqlite.inbound import INSERT_REPLY  # the store's own statement: same work per row

    db = raw_connection(folder / f"{name}.db")
    try:
        started = time.perf_counter()
        db.execute("BEGIN")
        db.executemany(INSERT_REPLY, rows)
        db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        (count,) = db.execute("SELECT count(*) FROM replies").fetchone()
        assert count == len(rows), (count, len(rows))
    finally:
        db.close()
    return len(rows) / elapsed


async def run_async(replies: int, concurrency: int, rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="popup-bench-ingest-") as tmp:
        folder = Path(tmp)
        raw: list[float] = []
        engine: list[float] = []
        for round_ in range(rounds):
            # Interleaved, so a noisy neighbour hurts both sides alike.
            rig, threads = await fresh_rig(folder, f"engine{round_}")
            events = make_events(threads, replies)
            gc.collect()
            engine.append(await closed_loop(rig, events, concurrency))
            count = await stored(rig)
            await rig.close()
            if count != replies:
                raise AssertionError(f"stored {count} of {replies} replies")
            gc.collect()
            raw.append(await raw_baseline(folder, f"raw{round_}", events))
            del events

        rig, threads = await fresh_rig(folder, "latency")
        offered = make_events(threads, int(rate * seconds))
        gc.collect()
        latencies = await open_loop(rig, offered, rate)
        count = await stored(rig)
        await rig.close()
        if count != len(offered):
            raise AssertionError(f"stored {count} of {len(offered)} replies")
    best_engine, best_raw = max(engine), max(raw)
    return {
        "replies": replies,
        "concurrency": concurrency,
        "engine_per_s": best_engine,
        "engine_runs": engine,
        "raw_per_s": best_raw,
        "raw_runs": raw,
        "ratio": best_engine / best_raw,
        "offered_per_s": rate,
        "offered_replies": len(offered),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def run(
    replies: int = 50_000, concurrency: int = 500, rate: float = 2_000, seconds: float = 5.0, rounds: int = 2
) -> dict[str, Any]:
    return run_loop(run_async(replies, concurrency, rate, seconds, rounds))


def report(r: dict[str, Any]) -> str:
    runs = ", ".join(f"{x:,.0f}" for x in r["engine_runs"])
    raws = ", ".join(f"{x:,.0f}" for x in r["raw_runs"])
    return (
        f"ingest: {r['replies']:,} replies, {r['concurrency']} concurrent members\n"
        f"  engine path   {r['engine_per_s']:>10,.0f} replies/s  (runs: {runs})\n"
        f"  raw executemany {r['raw_per_s']:>8,.0f} rows/s     (runs: {raws})\n"
        f"  ratio         {r['ratio']:.2f}x raw\n"
        f"  offered {r['offered_per_s']:,.0f}/s for {r['offered_replies']:,} replies: arrival→commit "
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms"
    )


def main() -> None:
    results = run(replies=flag("replies", 50_000), concurrency=flag("concurrency", 500))
    print(report(results), flush=True)
    emit(results)


if __name__ == "__main__":
    main()

