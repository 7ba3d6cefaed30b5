"""Ingest into PostgreSQL: replies through the real engine path, against raw asyncpg, and three
``popup run``-like processes on one database together.

The path measured is the one every adapter uses (as in :mod:`bench.ingest`): ``Engine.on_event``
→ the thread's session lookup → ``store.add_reply`` → its COMMIT (group commit, the inbound
advisory lock) → the await returns. Baselines in the same run, into the same schema (triggers and
tallies included): one ``executemany`` of the store's own INSERT in one transaction, and
``copy_records_to_table``; the ratio is against the faster of the two.

Then three child processes, each with its own store and engine on the one database, as three
``popup run`` would be: aggregate replies/s with many members each (closed loop), and at an offered
2,000 replies/s in all (open loop, a third each) the arrival→commit latency over all of them.

Needs a PostgreSQL server: ``POPUP_BENCH_POSTGRES`` (an admin URL; default
postgresql://postgres@127.0.0.1:5432/postgres). Each run makes a database of its own and drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.common import Rig, StampingPort, emit, flag, percentile
from bench.ingest import PROMPTS, bench_plan, closed_loop, make_events, open_loop, raw_rows
from bot.loop import run as run_loop
from bot.loop import tune_for_serving
from sessions.cluster import Cluster
from sessions.engine import Engine, EngineSettings
from sessions.model import ChannelRef, ReplyPosted, ThreadRef
from sessions.wakeups import Wakeups, utc_now
from storage.postgres import PostgresStore
from storage.postgres.inbound import INSERT_REPLY

ADMIN_URL = os.environ.get("POPUP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REPLY_COLUMNS = (
    "session_id",
    "prompt_id",
    "platform",
    "channel_id",
    "message_id",
    "author_id",
    "author_name",
    "text",
    "created_at",
)
PROCESSES = 3


def _database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    name = f"popup_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')  # a name of our own making
        try:
            yield _database_url(name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def open_pg_rig(url: str, *, holder: str) -> Rig:
    """An engine on the PostgreSQL store, wired as ``popup run`` wires it (with its cluster)."""
    store = await PostgresStore.open(url)
    port = StampingPort()
    engine = Engine(
        store=store,
        ports={port.platform: port},
        plans=[bench_plan()],
        settings=EngineSettings(default_plan=bench_plan().name),
        wakeups=Wakeups(),
        clock=utc_now,
        cluster=Cluster(store, holder=holder),
    )
    await engine.start()
    tune_for_serving()
    return Rig(store=store, port=port, engine=engine)  # type: ignore[arg-type]  # Rig is typed for SQLite


async def stored(rig: Rig) -> int:
    return (await rig.store.session_stats(1)).replies


async def prompt_ids(rig: Rig, threads: Sequence[ThreadRef]) -> dict[str, int]:
    found = {}
    for thread in threads:
        target = await rig.store.thread_target(thread.channel.platform, thread.thread_id)
        assert target is not None
        found[thread.thread_id] = target.prompt_id
    return found


def encoded(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Members' words as the PostgreSQL store keeps them: UTF-8 bytes."""
    return [(*row[:6], row[6].encode("utf-8"), row[7].encode("utf-8"), row[8]) for row in rows]


async def raw_baseline(url: str, rows: list[tuple[Any, ...]], how: str, *, chunk: int, triggers: bool = True) -> float:
    """Rows/s into an emptied replies table, ``chunk`` rows a transaction: with the schema's
    triggers (the tallies: the same work per row as the store's), or, for reference, without."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE replies, tally_by_minute, tally_by_author, tally_by_prompt")
        if not triggers:
            await conn.execute("ALTER TABLE replies DISABLE TRIGGER USER")
        started = time.perf_counter()
        for at in range(0, len(rows), chunk):
            async with conn.transaction():
                if how == "executemany":
                    await conn.executemany(INSERT_REPLY, rows[at : at + chunk])
                else:
                    await conn.copy_records_to_table("replies", records=rows[at : at + chunk], columns=REPLY_COLUMNS)
        elapsed = time.perf_counter() - started
        count = await conn.fetchval("SELECT count(*) FROM replies")
        assert count == len(rows), (count, len(rows))
        if not triggers:
            await conn.execute("ALTER TABLE replies ENABLE TRIGGER USER")
    finally:
        await conn.close()
    return len(rows) / elapsed


async def raw_baselines(url: str, rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """The raw ways, each at its best batching: one transaction, or the writer's batch size (a
    long transaction updating the same tally rows over and over is slower on PostgreSQL)."""
    found = {}
    for how in ("executemany", "copy"):
        found[how] = max([await raw_baseline(url, rows, how, chunk=size) for size in (len(rows), 512)])
    found["copy_without_triggers"] = await raw_baseline(url, rows, "copy", chunk=len(rows), triggers=False)
    return found


# -- three processes --------------------------------------------------------------------------


async def worker(url: str, index: int, threads: list[ThreadRef]) -> None:
    """One process of the three: prepares, says "ready", then runs what the parent asks on stdin."""
    rig = await open_pg_rig(url, holder=f"bench-{index}")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sent = 0
    try:
        print("ready", flush=True)
        while line := (await reader.readline()).decode().split():
            if line[0] == "quit":
                break
            count = int(line[1])
            events = _renamed(make_events(threads, count, start=sent), f"w{index}-")
            sent += count
            gc.collect()
            started = time.time()
            if line[0] == "closed":
                await closed_loop(rig, events, int(line[2]))
                result: dict[str, Any] = {"started": started, "ended": time.time(), "count": count}
            else:
                latencies = await open_loop(rig, events, float(line[2]))
                result = {"started": started, "ended": time.time(), "count": count, "latencies": latencies}
            print(json.dumps(result), flush=True)
    finally:
        await rig.close()


def _renamed(events: list[ReplyPosted], prefix: str) -> list[ReplyPosted]:
    """Message ids unique across the processes."""
    from dataclasses import replace

    return [replace(e, message=replace(e.message, message_id=prefix + e.message.message_id)) for e in events]


class Workers:
    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs

    @classmethod
    async def start(cls, url: str, threads: list[ThreadRef]) -> Workers:
        spec = json.dumps([[t.channel.platform, t.channel.channel_id, t.thread_id] for t in threads])
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.postgres_ingest",
                "--worker",
                str(n),
                url,
                spec,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 24,  # a line of latencies
            )
            for n in range(PROCESSES)
        ]
        workers = cls(procs)
        for proc in procs:
            assert proc.stdout is not None
            ready = await asyncio.wait_for(proc.stdout.readline(), 60)
            if ready.strip() != b"ready":
                raise RuntimeError(f"a worker did not start: {ready!r}")
        return workers

    async def ask(self, command: str) -> list[dict[str, Any]]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{command}\n".encode())
            await proc.stdin.drain()
        answers = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 240)
            answers.append(json.loads(line))
        return answers

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None and proc.stdin is not None:
                proc.stdin.write(b"quit\n")
                with contextlib.suppress(ConnectionError):
                    await proc.stdin.drain()
        for proc in self.procs:
            await asyncio.wait_for(proc.wait(), 60)


async def cluster_figures(url: str, threads: list[ThreadRef], replies: int, concurrency: int, rate: float,
                          seconds: float) -> dict[str, Any]:
    workers = await Workers.start(url, threads)
    try:
        share = replies // PROCESSES
        closed = await workers.ask(f"closed {share} {max(1, concurrency // PROCESSES)}")
        aggregate = share * PROCESSES / (max(r["ended"] for r in closed) - min(r["started"] for r in closed))
        offered = await workers.ask(f"open {int(rate * seconds / PROCESSES)} {rate / PROCESSES}")
        latencies = [x for r in offered for x in r["latencies"]]
    finally:
        await workers.stop()
    return {
        "processes": PROCESSES,
        "cluster_replies": share * PROCESSES,
        "cluster_per_s": aggregate,
        "cluster_offered_per_s": rate,
        "cluster_offered_replies": len(latencies),
        "cluster_p50_ms": percentile(latencies, 50) * 1000,
        "cluster_p99_ms": percentile(latencies, 99) * 1000,
        "cluster_max_ms": max(latencies) * 1000,
    }


# -- the run ------------------------------------------------------------------------------------


async def run_async(replies: int, concurrency: int, rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    engine: list[float] = []
    executemany: list[float] = []
    copy: list[float] = []
    bare: list[float] = []
    for _ in range(rounds):
        # Interleaved, so a noisy neighbour hurts both sides alike.
        async with fresh_database() as url:
            rig = await open_pg_rig(url, holder="bench")
            await rig.start_session("C-ingest", "ingest")
            threads = await rig.threads(PROMPTS)
            events = make_events(threads, replies)
            gc.collect()
            engine.append(await closed_loop(rig, events, concurrency))
            count = await stored(rig)
            rows = encoded(raw_rows(events, 1, await prompt_ids(rig, threads)))
            await rig.close()
            if count != replies:
                raise AssertionError(f"stored {count} of {replies} replies")
            gc.collect()
            raw = await raw_baselines(url, rows)
            executemany.append(raw["executemany"])
            copy.append(raw["copy"])
            bare.append(raw["copy_without_triggers"])
            del events, rows

    async with fresh_database() as url:
        rig = await open_pg_rig(url, holder="bench")
        await rig.start_session("C-ingest", "ingest")
        threads = await rig.threads(PROMPTS)
        offered = make_events(threads, int(rate * seconds))
        gc.collect()
        latencies = await open_loop(rig, offered, rate)
        count = await stored(rig)
        await rig.close()
        if count != len(offered):
            raise AssertionError(f"stored {count} of {len(offered)} replies")

    async with fresh_database() as url:
        rig = await open_pg_rig(url, holder="bench")
        await rig.start_session("C-ingest", "ingest")
        threads = await rig.threads(PROMPTS)
        await rig.close()
        cluster = await cluster_figures(url, threads, replies, concurrency, rate, seconds)
        check = await PostgresStore.open(url)
        try:
            count = (await check.session_stats(1)).replies
        finally:
            await check.close()
        expected = cluster["cluster_replies"] + cluster["cluster_offered_replies"]
        if count != expected:
            raise AssertionError(f"the processes stored {count} of {expected} replies")

    best_engine, best_raw = max(engine), max(max(executemany), max(copy))
    return {
        "replies": replies,
        "concurrency": concurrency,
        "engine_per_s": best_engine,
        "engine_runs": engine,
        "executemany_per_s": max(executemany),
        "copy_per_s": max(copy),
        "copy_without_triggers_per_s": max(bare),
        "raw_per_s": best_raw,
        "ratio": best_engine / best_raw,
        "offered_per_s": rate,
        "offered_replies": len(offered),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        **cluster,
    }


def run(
    replies: int = 20_000, concurrency: int = 500, rate: float = 2_000, seconds: float = 5.0, rounds: int = 2
) -> dict[str, Any]:
    return run_loop(run_async(replies, concurrency, rate, seconds, rounds))


def report(r: dict[str, Any]) -> str:
    runs = ", ".join(f"{x:,.0f}" for x in r["engine_runs"])
    return (
        f"postgres_ingest: {r['replies']:,} replies, {r['concurrency']} concurrent members\n"
        f"  engine path     {r['engine_per_s']:>10,.0f} replies/s  (runs: {runs})\n"
        f"  raw executemany {r['executemany_per_s']:>10,.0f} rows/s\n"
        f"  raw copy        {r['copy_per_s']:>10,.0f} rows/s  (without the tally triggers: "
        f"{r['copy_without_triggers_per_s']:,.0f} rows/s)\n"
        f"  ratio           {r['ratio']:.2f}x raw (target >= 0.25x)\n"
        f"  offered {r['offered_per_s']:,.0f}/s for {r['offered_replies']:,} replies: arrival→commit "
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms\n"
        f"  {r['processes']} processes: {r['cluster_per_s']:,.0f} replies/s in all (target >= 5,000); "
        f"offered {r['cluster_offered_per_s']:,.0f}/s in all: p50 {r['cluster_p50_ms']:.1f} ms, "
        f"p99 {r['cluster_p99_ms']:.1f} ms (target < 50), max {r['cluster_max_ms']:.1f} ms"
    )


def main() -> None:
    if "--worker" in sys.argv:
        at = sys.argv.index("--worker")
        index, url, spec = int(sys.argv[at + 1]), sys.argv[at + 2], json.loads(sys.argv[at + 3])
        threads = [ThreadRef(channel=ChannelRef(platform=p, channel_id=c), thread_id=t) for p, c, t in spec]
        run_loop(worker(url, index, threads))
        return
    results = run(replies=flag("replies", 20_000), concurrency=flag("concurrency", 500))
    print(report(results), flush=True)
    emit(results)


if __name__ == "__main__":
    main()
