"""The real ``popup`` as a child process: ``popup run`` that tests start, talk to, kill and restart,
one-shot commands (``popup export``, ``backup``, ``demo``), and its database read as another
process would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import eventually

MODULE = (sys.executable, "-m", "bot.cli")
SCRIPT = (str(Path(sys.executable).parent / "popup"),)  # the installed console script


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without any platform token of the developer's own, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))}
    return {**env, **(extra or {}), "PYTHONUNBUFFERED": "1"}


class PopupProcess:
    """``popup run --config CONFIG`` in the config's folder; its stdout and stderr collected as they come.

    :meth:`start` returns once it logged "popup is ready"; :meth:`type` writes a line to its stdin
    (the console adapter's input); :meth:`stop` ends it gracefully and returns the exit code.
    """

    def __init__(self, config: Path, env: dict[str, str] | None = None, *, program: tuple[str, ...] = MODULE) -> None:
        self.config = config
        self.env = child_env(env)
        self.program = program
        self.proc: asyncio.subprocess.Process | None = None
        self.out = ""
        self.stderr = ""
        self.starts = 0
        self._ready = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []

    async def launch(self) -> None:
        """Start the process without waiting for it to be ready (see :meth:`start`)."""
        self._ready.clear()
        self.proc = await asyncio.create_subprocess_exec(
            *self.program,
            "run",
            "--config",
            str(self.config),
            cwd=self.config.parent,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        self.starts += 1
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout, stderr=False)),
            asyncio.create_task(self._read(self.proc.stderr, stderr=True)),
        ]

    async def start(self, within: float = 30.0) -> None:
        await self.launch()

        def ready() -> bool:
            if not self._ready.is_set() and self._finished():
                raise AssertionError(f"popup exited before it was ready:\n{self.stderr[-4000:]}")
            return self._ready.is_set()

        await eventually(ready, within, what=f"popup to be ready; its log:\n{self.stderr[-4000:]}")

    async def _read(self, stream: asyncio.StreamReader, *, stderr: bool) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace")
            if not stderr:
                self.out += text
                continue
            self.stderr += text
            if "popup is ready" in text:
                self._ready.set()

    def _finished(self) -> bool:
        return self.proc is not None and self.proc.returncode is not None and all(r.done() for r in self._readers)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def type(self, line: str) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        await self.proc.stdin.drain()

    async def wait_output(self, text: str, within: float = 30.0) -> None:
        """Wait until ``text`` is on its stdout; fail at once if it exits first."""

        def shown() -> bool:
            if text in self.out:
                return True
            if self._finished():
                assert self.proc is not None
                raise AssertionError(f"popup exited ({self.proc.returncode}) before {text!r}:\n{self.out}")
            return False

        await eventually(shown, within, what=repr(text))

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM, SIGINT: graceful) unless it has exited already; the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await self.wait()

    async def wait(self, within: float = 60.0) -> int:
        """Wait for it to exit (and its output to be read); the exit code."""
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), within)
        await asyncio.gather(*self._readers)
        return code


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    code: int
    out: str
    err: str


async def popup_command(*args: str, cwd: Path | None = None, within: float = 120.0) -> Finished:
    """Run ``popup ARGS…`` to its end (``export``, ``backup``, ``sessions``, ``demo``…)."""
    proc = await asyncio.create_subprocess_exec(
        *MODULE,
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), within)
    assert proc.returncode is not None
    return Finished(code=proc.returncode, out=out.decode("utf-8", "replace"), err=err.decode("utf-8", "replace"))


def query(db_path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows from the bot's database, read-only as another process would while it runs; no rows
    while the database or its tables do not exist yet."""
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []


def stored_replies(db_path: Path) -> list[str]:
    """The standing replies' texts, in the order they were stored."""
    return [str(t) for (t,) in query(db_path, "SELECT text FROM replies WHERE deleted_at IS NULL ORDER BY id")]


def posted_prompts(db_path: Path) -> int:
    return len(query(db_path, "SELECT id FROM prompts WHERE state = 'posted'"))


async def wait_closed(db_path: Path, within: float = 30.0) -> None:
    """Wait until the database says its one session is closed."""
    await eventually(
        lambda: query(db_path, "SELECT state FROM sessions") == [("closed",)], within, what="the session closed"
    )
