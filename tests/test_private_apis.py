"""Every private part of a third-party library that Popup leans on, named per library.

pyproject.toml caps each library named here below its next minor release. Before raising a cap, run
this file: a test names the attribute that moved, where otherwise a feature would stop quietly (the
Discord keep-alive while gateway reading is paused, the SQLite writer's one-trip commits). The last
tests keep the list whole: a private attribute of a library used anywhere in adapters/, storage/ or
bot/ and not named here fails them, and so does a name here that the code no longer uses.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosqlite
import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket, KeepAliveHandler
from discord.http import Route

from adapters.discord.internals import check_classes
from tests.discord.conftest import make_adapter
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.recording_handler import RecordingHandler

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("adapters", "storage", "bot")
OURS = ("adapters", "sessions", "storage", "bot", "tests", "bench")

# Per library: the private names used, and where (for the message when one is gone).
PRIVATE: dict[str, dict[str, str]] = {
    "discord.py": {
        "_schedule_event": "adapters/discord/client.py counts every event handler task (backpressure)",
        "_keep_alive": "adapters/discord/internals.py keeps a paused gateway connection alive",
    },
    "aiosqlite": {
        "_execute": "storage: the writer runs a whole batch on aiosqlite's thread in one trip",
        "_conn": "storage: the writer's batch uses the sqlite3 connection on that thread",
    },
    # slack-bolt, slack-sdk, aiohttp, apscheduler, uvloop, jinja2, pillow: none.
}


def gone(library: str, version: str, owner: str, name: str) -> str:
    return f"{library} {version}: {owner}.{name} is gone; {PRIVATE[library][name]}. Keep the cap in pyproject.toml"


# -- discord.py ------------------------------------------------------------------------------------


def test_discord_client_schedules_every_event_handler_through_schedule_event() -> None:
    schedule = getattr(discord.Client, "_schedule_event", None)
    assert callable(schedule), gone("discord.py", discord.__version__, "Client", "_schedule_event")
    assert list(inspect.signature(schedule).parameters) == ["self", "coro", "event_name", "args", "kwargs"]
    assert "_schedule_event" in inspect.getsource(discord.Client.dispatch), "Client.dispatch no longer calls it"


async def test_discord_websocket_keeps_its_heartbeat_in_keep_alive() -> None:
    ws = DiscordWebSocket(None, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    assert "_keep_alive" in vars(ws), gone("discord.py", discord.__version__, "DiscordWebSocket", "_keep_alive")
    assert callable(getattr(KeepAliveHandler, "tick", None)), "discord.py: KeepAliveHandler.tick is gone"


def test_discord_public_but_undocumented_parts_are_there() -> None:
    # Not private, but not documented either: Client.ws (assigned per connection), poll_event
    # (one frame), and the class-level REST and gateway bases.
    assert "ws" in vars(discord.Client(intents=discord.Intents.none()))
    assert inspect.iscoroutinefunction(DiscordWebSocket.poll_event)
    assert isinstance(Route.BASE, str)
    assert isinstance(DiscordWebSocket.DEFAULT_GATEWAY, yarl.URL)
    check_classes()  # the adapter's own start-up check agrees


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.close()


async def test_discord_start_up_goes_through_every_internal_it_checks(fake: FakeDiscord) -> None:
    """The start-up checks pass on the installed discord.py, against the fake gateway."""
    adapter = make_adapter(fake)
    await adapter.start(RecordingHandler())
    try:
        client = adapter.client
        assert client is not None
        client.check_wiring()
        assert client.gate.peak >= 1  # READY's handler went through _schedule_event
        assert client.ws is not None
        assert isinstance(client.ws._keep_alive, KeepAliveHandler)
        assert client.ws.gateway == yarl.URL(fake.gateway_url)  # re-pointed at READY
    finally:
        await adapter.stop()


# -- aiosqlite --------------------------------------------------------------------------------------


async def test_aiosqlite_runs_a_function_on_its_thread_with_the_raw_connection() -> None:
    version = aiosqlite.__version__
    assert inspect.iscoroutinefunction(getattr(aiosqlite.Connection, "_execute", None)), gone(
        "aiosqlite", version, "Connection", "_execute"
    )
    assert hasattr(aiosqlite.Connection, "_conn"), gone("aiosqlite", version, "Connection", "_conn")
    async with aiosqlite.connect(":memory:") as db:
        raw = db._conn
        assert isinstance(raw, sqlite3.Connection)

        def answer() -> tuple[int, int]:
            return threading.get_ident(), raw.execute("SELECT 41 + 1").fetchone()[0]

        thread, value = await db._execute(answer)  # type: ignore[no-untyped-call]
    assert value == 42
    assert thread != threading.get_ident()  # on aiosqlite's own thread, where the connection lives


# -- the list is whole ------------------------------------------------------------------------------------


def _trees(folders: tuple[str, ...]) -> Iterator[tuple[Path, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# namedtuple's documented API: underscored only so as not to clash with field names.
_PUBLIC_DESPITE_UNDERSCORE = frozenset({"_fields", "_field_defaults", "_make", "_asdict", "_replace"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in _PUBLIC_DESPITE_UNDERSCORE


def _our_private_names() -> set[str]:
    """Private names our own code defines: its functions, classes, variables and attributes."""
    names: set[str] = set()
    for _, tree in _trees(OURS):
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {n for n in names if _private(n)}


def _library_private_uses() -> dict[str, list[str]]:
    """Each private name of a library used in ``SCANNED``, with where: attributes reached on an
    object other than ``self``/``cls`` that our code never defines (anything reached through
    ``super()``), names in ``getattr``/``hasattr``/``setattr``/``delattr``, and private imports."""
    ours = _our_private_names()
    found: dict[str, list[str]] = {}

    def note(name: str, path: Path, node: ast.AST) -> None:
        found.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")

    for path, tree in _trees(SCANNED):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                base = ast.unparse(node.value)
                if base == "super()" or (base not in ("self", "cls") and node.attr not in ours):
                    note(node.attr, path, node)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and _private(node.args[1].value)
                and ast.unparse(node.args[0]) not in ("self", "cls")
            ):
                note(node.args[1].value, path, node)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in OURS:
                    continue
                for part in node.module.split("."):
                    if _private(part):
                        note(part, path, node)
                for alias in node.names:
                    if _private(alias.name):
                        note(alias.name, path, node)
    return found


def test_every_private_name_of_a_library_in_use_is_named_here() -> None:
    named = {name for names in PRIVATE.values() for name in names}
    unnamed = {name: where for name, where in _library_private_uses().items() if name not in named}
    assert not unnamed, (
        f"private parts of a library used but not named in {Path(__file__).name} (name them, cap the "
        f"library in pyproject.toml, and check them at start-up): {unnamed}"
    )


def test_every_name_here_is_still_in_use() -> None:
    named = {name for names in PRIVATE.values() for name in names}
    unused = named - set(_library_private_uses())
    assert not unused, f"no longer used: {sorted(unused)}; drop them here (and the cap, if it was the last)"
