"""Start-up: ``popup run --config F`` (console only, stdin from /dev/null) until "popup is ready".

The database holds 100 finished sessions (3 prompts, 50 replies each), made through the store, so
the real schema and the real boot path (migrations check, resume of active sessions) are exercised.
Baseline in the same run: the bare interpreter (``python -c pass``) and ``python -c "import asyncio,
sqlite3"``, the floor any Python bot on this machine pays.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import emit, percentile
from sessions.model import ChannelRef
from sessions.records import NewPrompt, NewReply, NewSession, SessionState
from storage.sqlite import SqliteStore

READY = b"popup is ready"

CONFIG = """
[storage]
path = "popup.db"

[session]
timezone = "UTC"
default_plan = "bench"

[[plans]]
name = "bench"
title = "Bench"
intro = "Start-up benchmark."
recap_at = "+2h"
  [[plans.prompts]]
  at = "+0s"
  text = "First?"
  [[plans.prompts]]
  at = "+1h"
  text = "Second?"

[console]
enabled = true
"""


async def build_database(path: Path, sessions: int, replies: int) -> None:
    store = await SqliteStore.open(path)
    try:
        start = datetime.now(UTC) - timedelta(days=2)
        for k in range(sessions):
            channel = ChannelRef(platform="console", channel_id=f"C{k}")
            at = start + timedelta(minutes=k)
            session = await store.create_session(
                NewSession(
                    plan_name="bench",
                    title=f"Session {k}",
                    intro="Finished long ago.",
                    timezone="UTC",
                    channel=channel,
                    anonymous=False,
                    started_by="org",
                    started_at=at,
                    recap_at=at + timedelta(hours=8),
                    prompts=tuple(NewPrompt(text=f"Prompt {p}?", due_at=at + timedelta(hours=p)) for p in range(3)),
                )
            )
            assert session is not None
            prompts = await store.prompts(session.id)
            await asyncio.gather(
                *(
                    store.add_reply(
                        NewReply(
                            session_id=session.id,
                            prompt_id=prompts[r % 3].id,
                            platform="console",
                            channel_id=channel.channel_id,
                            message_id=f"{k}-{r}",
                            author_id=f"u{r % 20}",
                            author_name=f"User {r % 20}",
                            text=f"Reply {r} of session {k}",
                            created_at=at + timedelta(minutes=r),
                        )
                    )
                    for r in range(replies)
                )
            )
            for state in (SessionState.RUNNING, SessionState.CLOSING, SessionState.CLOSED):
                previous = {
                    SessionState.RUNNING: SessionState.SCHEDULED,
                    SessionState.CLOSING: SessionState.RUNNING,
                    SessionState.CLOSED: SessionState.CLOSING,
                }[state]
                assert await store.set_session_state(session.id, [previous], state, at=at + timedelta(hours=8))
    finally:
        await store.close()


def popup_command() -> list[str]:
    script = Path(sys.executable).parent / "popup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def time_to_ready(command: list[str], config: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "run", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stderr is not None
    seen = b""
    try:
        while READY not in seen:
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError(f"popup run exited before ready:\n{seen.decode(errors='replace')}")
            seen += line
        return time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def time_command(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def run(sessions: int = 100, replies: int = 50, repeats: int = 7) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="popup-bench-startup-") as tmp:
        folder = Path(tmp)
        asyncio.run(build_database(folder / "popup.db", sessions, replies))
        config = folder / "popup.toml"
        config.write_text(CONFIG, encoding="utf-8")
        command = popup_command()
        time_to_ready(command, config)  # warm the page cache and the .pyc files
        ready = [time_to_ready(command, config) for _ in range(repeats)]
    bare = [time_command([sys.executable, "-c", "pass"]) for _ in range(repeats)]
    floor = [time_command([sys.executable, "-c", "import asyncio, sqlite3"]) for _ in range(repeats)]
    return {
        "sessions": sessions,
        "ready_s": percentile(ready, 50),
        "ready_runs": ready,
        "ready_max_s": max(ready),
        "python_s": percentile(bare, 50),
        "floor_s": percentile(floor, 50),
    }


def report(r: dict[str, Any]) -> str:
    return (
        f"startup: popup run → ready with {r['sessions']} finished sessions: median {r['ready_s']:.3f} s "
        f"(max {r['ready_max_s']:.3f} s); bare python {r['python_s']:.3f} s, "
        f"python + asyncio + sqlite3 {r['floor_s']:.3f} s"
    )


def main() -> None:
    results = run()
    print(report(results), flush=True)
    emit(results)


if __name__ == "__main__":
    main()
