"""``popup run`` as a child process that tests can start, wait on, kill and restart."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PopupProcess:
    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = ""
        self.starts = 0
        self._ready = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, within: float = 30.0) -> None:
        self._ready.clear()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--config",
            str(self.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        self.starts += 1
        self._reader = asyncio.create_task(self._read(self.proc))
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            raise AssertionError(f"popup did not become ready:\n{self.stderr[-4000:]}") from None

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode("utf-8", "replace")
            self.stderr += text
            if "popup is ready" in text:
                self._ready.set()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        await self._end(signal.SIGKILL)

    async def stop(self) -> int:
        return await self._end(signal.SIGTERM)

    async def _end(self, sig: int) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        if self._reader is not None:
            await self._reader
        return code


async def wait_closed(db_path: Path, within: float = 30.0) -> None:
    """Wait until the database says its one session is closed (read as another process would)."""
    async with asyncio.timeout(within):
        while True:
            with sqlite3.connect(db_path) as db:
                if db.execute("SELECT state FROM sessions").fetchall() == [("closed",)]:
                    return
            await asyncio.sleep(0.1)
