"""The real ``popup`` process: console sessions over stdin, SIGKILL and restart, the demo."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

CONFIG = """
[storage]
path = "popup.db"
[session]
timezone = "UTC"
default_plan = "{plan}"
[[plans]]
name = "long"
title = "A long day"
recap_at = "+1h"
  [[plans.prompts]]
  at = "+0s"
  text = "What did you learn today?"
  [[plans.prompts]]
  at = "+30m"
  text = "What next?"
[[plans]]
name = "short"
title = "A short day"
recap_at = "+9s"
  [[plans.prompts]]
  at = "+0s"
  text = "First prompt?"
  [[plans.prompts]]
  at = "+4s"
  text = "Second prompt?"
  [[plans.prompts]]
  at = "+6s"
  text = "Third prompt?"
[console]
enabled = true
"""


class Popup:
    """``popup run`` as a child process, its stdout collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def run(cls, config: Path) -> Popup:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--config",
            str(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.out += line.decode("utf-8")

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        await self.proc.stdin.drain()

    async def wait_for(self, text: str, within: float = 20.0) -> None:
        async with asyncio.timeout(within):
            while text not in self.out:
                if self.proc.returncode is not None:
                    raise AssertionError(f"popup exited ({self.proc.returncode}) before {text!r}:\n{self.out}")
                await asyncio.sleep(0.05)

    async def finish(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 20)
        await self._reader
        return code


@pytest.fixture
def config(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(plan=getattr(request, "param", "long")), encoding="utf-8")
    return path


def replies_in(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM replies WHERE deleted_at IS NULL ORDER BY id")]


@pytest.mark.e2e
async def test_run_on_the_console_start_reply_stop(config: Path) -> None:
    popup = await Popup.run(config)
    try:
        await popup.type("/popup start")
        await popup.wait_for("Prompt 1 of 2")
        await popup.type("Reading other people's code 📚")
        await popup.type("Asking 'why' twice")
        await popup.type("/popup stop")
        await popup.wait_for("Recap: A long day")
        await popup.wait_for("closed; the recap is posted")
        assert "2 replies" in popup.out
        assert "Reading other people's code 📚 — you" in popup.out
        assert "closed; the recap is posted" in popup.out
    finally:
        assert await popup.finish() == 0
    assert replies_in(config.parent / "popup.db") == ["Reading other people's code 📚", "Asking 'why' twice"]


@pytest.mark.e2e
async def test_backup_while_the_bot_runs(config: Path, tmp_path: Path) -> None:
    popup = await Popup.run(config)
    try:
        await popup.type("/popup start")
        await popup.wait_for("Prompt 1 of 2")
        for i in range(50):
            await popup.type(f"reply {i}")
        copy = tmp_path / "copy.db"
        backup = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "backup",
            "--config",
            str(config),
            "--out",
            str(copy),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await backup.communicate()
        assert backup.returncode == 0, err
        listing = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "sessions", "--db", str(copy), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await listing.communicate()
        assert out.decode().startswith("1\tlong\trunning\tconsole:console\t")
    finally:
        assert await popup.finish() == 0
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
    assert oct(copy.stat().st_mode & 0o777) == "0o600"


@pytest.mark.e2e
@pytest.mark.parametrize("config", ["short"], indirect=True)
async def test_sigkill_mid_session_and_restart_loses_and_repeats_nothing(config: Path) -> None:
    db = config.parent / "popup.db"
    first = await Popup.run(config)
    await first.type("/popup start")
    await first.wait_for("Prompt 1 of 3")
    typed = ["before the kill 1", "before the kill 2 ‮", "before the kill 3"]
    for line in typed:
        await first.type(line)
    async with asyncio.timeout(10):
        while len(replies_in(db)) < len(typed):
            await asyncio.sleep(0.05)
    await first.finish(signal.SIGKILL)
    assert first.proc.returncode == -signal.SIGKILL

    second = await Popup.run(config)
    try:
        await second.wait_for("Recap: A short day", within=30)
    finally:
        assert await second.finish() == 0
    both = first.out + second.out
    for once in ("Popup learning session: A short day", "Prompt 1 of 3", "Prompt 2 of 3", "Prompt 3 of 3", "Recap:"):
        assert both.count(once) == 1, (once, both)
    assert "3 replies" in second.out
    assert replies_in(db) == typed
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT key, attempts FROM posts WHERE message_id IS NULL").fetchall() == []
        assert conn.execute("SELECT state FROM sessions").fetchall() == [("closed",)]


@pytest.mark.e2e
@pytest.mark.slow
async def test_the_demo_runs_a_whole_session(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "demo",
        "--out",
        str(tmp_path / "out"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode("utf-8")
    assert proc.returncode == 0, err.decode()
    assert text.count("Prompt ") >= 3
    assert "edited a reply" in text
    assert "deleted a reply" in text
    assert "Recap: Popup learning: who makes learning culture?" in text
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"article.md", "article.html", "chart.png"} <= written
