"""Many sessions at once: 1,000 sessions running in 1,000 channels, each with 4 prompts falling due
within the same minute, while replies arrive at 2,000/s.

The database is built first (in a child process, through the store, so the real schema is used):
each session running, its opening and first prompt posted, its next four prompts due at the same
four moments as every other session's, 10 s apart (as a plan with "HH:MM" times would have them:
a wave of 1,000 prompts due at one instant, four times within 30 s). Then:

- **lateness**: the engine starts on that database (resuming every session, as after a restart),
  the four waves fall due, and an open-loop load of replies arrives at ``RATE`` per second into
  the prompts' threads meanwhile. The port stamps each ``open_thread``; lateness is that stamp
  minus the prompt's due time. Also how long the resume took (``Engine.start`` returning, and
  every session's wake-ups being in place), and this process's peak RSS.
- **resume**: the real ``popup run`` (console) on a database of 1,000 running sessions, from the
  process's start until it logs that it is ready (as bench/startup.py measures it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import StampingPort, emit, flag, peak_rss_mb, percentile, plan, raw_connection
from bench.startup import popup_command, time_to_ready
from bot.loop import run as run_loop
from bot.loop import tune_for_serving
from sessions.engine import Engine, EngineSettings
from sessions.model import ChannelRef, Member, MessageRef, Posted, ReplyPosted, ThreadRef
from sessions.records import NewPrompt, NewSession, PromptState, SessionState
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore

SESSIONS = 1000
PROMPTS = 4  # due within the same minute, after the one posted before the engine starts
WAVE_GAP = 10.0  # seconds between the waves of prompts
LEAD = 5.0  # seconds from the engine's start to the first wave: the resume happens in between
RATE = 2000  # replies per second, offered while the prompts fall due
MEMBERS = 500
TEXT = "Pairing with someone more experienced taught me more than any course did."

CONFIG = """
[storage]
path = "popup.db"

[session]
timezone = "UTC"
default_plan = "many"

[[plans]]
name = "many"
title = "Many"
intro = "Many sessions at once."
recap_at = "+2h"
  [[plans.prompts]]
  at = "+0s"
  text = "First?"

[console]
enabled = true
"""


# -- the database: built in a child process, so its memory is not this process's ---------------------


async def build_database(path: Path, *, platform: str, sessions: int, first_due: datetime) -> None:
    """``sessions`` running sessions, one per channel ``C{k}``: opening and prompt 1 posted (prompt 1's
    thread is ``th-pre-{k}``), prompts 2..5 due at ``first_due`` + 0, 10, 20, 30 s, the recap an hour on."""
    store = await SqliteStore.open(path)
    started = first_due - timedelta(hours=1)

    async def one(k: int) -> None:
        channel = ChannelRef(platform=platform, channel_id=f"C{k}")
        session = await store.create_session(
            NewSession(
                plan_name="many",
                title=f"Session {k}",
                intro="Many sessions at once.",
                timezone="UTC",
                channel=channel,
                anonymous=False,
                started_by="org",
                started_at=started,
                recap_at=first_due + timedelta(hours=1),
                prompts=(
                    NewPrompt(text="Prompt 1: what did you learn?", due_at=started),
                    *(
                        NewPrompt(
                            text=f"Prompt {p + 2}: what did you learn?",
                            due_at=first_due + timedelta(seconds=p * WAVE_GAP),
                        )
                        for p in range(PROMPTS)
                    ),
                ),
            )
        )
        assert session is not None
        first = (await store.prompts(session.id))[0]
        opening = await store.claim_post(session.id, "opening", channel)
        await store.record_posted(
            opening.id, Posted(message=MessageRef(channel=channel, message_id=f"open-{k}")), at=started
        )
        assert await store.set_session_state(session.id, [SessionState.SCHEDULED], SessionState.RUNNING)
        post = await store.claim_post(session.id, "prompt:1", channel, prompt_id=first.id)
        thread = ThreadRef(channel=channel, thread_id=f"th-pre-{k}")
        await store.record_posted(
            post.id, Posted(message=MessageRef(channel=channel, message_id=f"pre-{k}"), thread=thread), at=started
        )
        assert await store.set_prompt_state(first.id, [PromptState.PENDING], PromptState.POSTED, at=started)

    try:
        for chunk in range(0, sessions, 100):
            await asyncio.gather(*(one(k) for k in range(chunk, min(chunk + 100, sessions))))
    finally:
        await store.close()


def build_in_child(path: Path, *, platform: str, sessions: int, first_due: datetime) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.many_sessions",
            "--build",
            str(path),
            platform,
            str(sessions),
            str(first_due.timestamp()),
        ],
        check=True,
    )


# -- lateness under load, in this process ---------------------------------------------------------------


async def _replies(engine: Engine, threads: list[ThreadRef], port: StampingPort, rate: int, stop: asyncio.Event) -> int:
    """Open loop: ``rate`` replies a second, each handled in a task of its own, whatever the engine does."""
    members = [Member(platform=port.platform, user_id=f"U{i:04d}", display_name=f"Member {i}") for i in range(MEMBERS)]
    counter = itertools.count()
    pending: set[asyncio.Task[None]] = set()
    tick = 0.01
    started = time.perf_counter()
    sent = 0
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate)
        opened = port.opened
        while sent < due:
            i = next(counter)
            # Half into the threads posted before the start, half into the newest the engine opened.
            newest = opened and i % 2
            thread = opened[-1 - (i // 2) % min(len(opened), 1000)][2] if newest else threads[i % len(threads)]
            event = ReplyPosted(
                thread=thread,
                message=MessageRef(channel=thread.channel, message_id=f"L{i}"),
                author=members[i % MEMBERS],
                text=f"{TEXT} #{i}",
                at=datetime.now(UTC),
            )
            task = asyncio.create_task(engine.on_event(event))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(tick)
    await asyncio.gather(*pending)
    return sent


async def measure_lateness(
    folder: Path, sessions: int, rate: int, *, lead: float = LEAD, gap: float = WAVE_GAP
) -> dict[str, Any]:
    path = folder / "lateness.db"
    build_in_child(path, platform="bench", sessions=sessions, first_due=datetime.now(UTC) + timedelta(hours=1))
    # The waves fall due LEAD seconds after the engine starts, however long the build took.
    first_due = time.time() + lead
    with contextlib.closing(raw_connection(path)) as db:
        db.execute("UPDATE prompts SET due_at = ? + (position - 2) * ? WHERE position > 1", (first_due, gap))
    store = await SqliteStore.open(path)
    port = StampingPort()
    wakeups = Wakeups()
    engine = Engine(
        store=store,
        ports={port.platform: port},
        plans=[plan("many", ["+0s"])],
        settings=EngineSettings(default_plan="many"),
        wakeups=wakeups,
        clock=utc_now,
    )
    try:
        began = time.perf_counter()
        await engine.start()
        start_s = time.perf_counter() - began
        tune_for_serving()  # as `popup run` does once started
        # Resumed: every session's four prompts and its recap are waiting to wake.
        while sum(1 for job in wakeups.pending() if not job.startswith(("resume:", "prune"))) < sessions * 5:
            await asyncio.sleep(0.005)
        resumed_s = time.perf_counter() - began
        stop = asyncio.Event()
        threads = [ThreadRef(channel=ChannelRef(platform=port.platform, channel_id=f"C{k}"), thread_id=f"th-pre-{k}")
                   for k in range(sessions)]
        load = asyncio.create_task(_replies(engine, threads, port, rate, stop))
        expected = sessions * PROMPTS
        deadline = time.monotonic() + lead + PROMPTS * gap + 30
        while len(port.opened) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(port.opened)} of {expected} prompts were posted")
            await asyncio.sleep(0.05)
        stop.set()
        offered = await load
        due = {
            (prompt.session_id, prompt.position): prompt.due_at.timestamp()
            for session in await store.list_sessions()
            for prompt in await store.prompts(session.id)
        }
        lateness = []
        for stamp, key, _ in port.opened:
            parts = key.split(":")  # popup:{session}:{started}:prompt:{position}
            lateness.append(stamp - due[(int(parts[1]), int(parts[4]))])
        stored = (await store.storage_figures()).rows["replies"]
    finally:
        await engine.stop()
        await store.close()
    return {
        "prompts": len(lateness),
        "p50_ms": percentile(lateness, 50) * 1000,
        "p99_ms": percentile(lateness, 99) * 1000,
        "max_ms": max(lateness) * 1000,
        "start_s": start_s,
        "resumed_s": resumed_s,
        "replies_offered": offered,
        "replies_stored": stored,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- `popup run` resuming them ----------------------------------------------------------------------------


def measure_resume(folder: Path, sessions: int, repeats: int) -> dict[str, Any]:
    """``popup run`` until ready, on 1,000 running console sessions whose next prompts are an hour off."""
    build_in_child(
        folder / "popup.db", platform="console", sessions=sessions, first_due=datetime.now(UTC) + timedelta(hours=1)
    )
    config = folder / "popup.toml"
    config.write_text(CONFIG, encoding="utf-8")
    command = popup_command()
    time_to_ready(command, config)  # warm the page cache and the .pyc files
    ready = [time_to_ready(command, config) for _ in range(repeats)]
    return {"ready_s": percentile(ready, 50), "ready_max_s": max(ready), "ready_runs": ready}


def run(
    sessions: int = SESSIONS, rate: int = RATE, repeats: int = 3, *, lead: float = LEAD, gap: float = WAVE_GAP
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="popup-bench-many-") as tmp:
        folder = Path(tmp)
        resume = measure_resume(folder, sessions, repeats)
        lateness = run_loop(measure_lateness(folder, sessions, rate, lead=lead, gap=gap))
    return {
        "sessions": sessions,
        "rate": rate,
        "gap_s": gap,
        "lateness": lateness,
        "resume": resume,
        "p99_ms": lateness["p99_ms"],
        "resume_s": resume["ready_s"],
        "peak_rss_mb": lateness["peak_rss_mb"],
    }


def report(r: dict[str, Any]) -> str:
    late, resume = r["lateness"], r["resume"]
    return "\n".join(
        [
            f"many sessions: {r['sessions']:,} sessions, {late['prompts']:,} prompts due in {PROMPTS} waves "
            f"{r['gap_s']:g} s apart, replies offered at {r['rate']:,}/s",
            f"  lateness: p50 {late['p50_ms']:.0f} ms, p99 {late['p99_ms']:.0f} ms, max {late['max_ms']:.0f} ms; "
            f"{late['replies_stored']:,} of {late['replies_offered']:,} replies stored; peak RSS "
            f"{late['peak_rss_mb']:.0f} MB",
            f"  resume in the engine: start() {late['start_s']:.2f} s, every session rescheduled "
            f"{late['resumed_s']:.2f} s",
            f"  popup run → ready with {r['sessions']:,} running sessions: median {resume['ready_s']:.2f} s "
            f"(max {resume['ready_max_s']:.2f} s)",
        ]
    )


def main() -> None:
    if "--build" in sys.argv:
        at = sys.argv.index("--build")
        path, platform, sessions, first_due = sys.argv[at + 1 : at + 5]
        run_loop(
            build_database(
                Path(path),
                platform=platform,
                sessions=int(sessions),
                first_due=datetime.fromtimestamp(float(first_due), UTC),
            )
        )
        return
    results = run(sessions=flag("sessions", SESSIONS), rate=flag("rate", RATE))
    print(report(results), flush=True)
    emit(results)


if __name__ == "__main__":
    main()
