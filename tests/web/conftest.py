"""One rig for the web tests: a real engine on a SQLite file (or a PostgreSQL database), a recording
chat platform, and the web adapter serving on 127.0.0.1 (a port of its own); and browsers that talk
to it over HTTP."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.web.adapter import WebAdapter
from adapters.web.settings import WebSettings
from sessions.engine import Engine, EngineSettings
from sessions.model import ChannelRef, CommandInvoked, Member
from sessions.plan_book import PlanBook
from sessions.plans import Plan
from sessions.wakeups import Wakeups, utc_now
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests.postgres import new_database_sync
from tests.support import RecordingPort, eventually, member, offset_plan

SECRET = "a-test-secret-of-enough-length"
ORGANISER = member("org", "Olga", is_admin=False)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class WebRig:
    store: SqliteStore | PostgresStore
    chat: RecordingPort
    web: WebAdapter
    engine: Engine
    channel: ChannelRef
    db_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    async def command(self, name: str, *args: str, who: Member = ORGANISER) -> str:
        reply = await self.engine.on_command(
            CommandInvoked(channel=self.channel, member=who, name=name, args=args, at=utc_now())
        )
        return reply.text

    async def start_session(self, *args: str) -> tuple[int, str]:
        """Start a session in the chat channel; its id and page URL (from the organiser's answer)."""
        text = await self.command("start", *args)
        found = re.search(r"(http://\S+/s/(\d+)\.\S+)", text)
        assert found, text
        session_id = int(found[2])
        await self.prompt_on_page(session_id, 1)
        return session_id, found[1]

    async def prompt_on_page(self, session_id: int, count: int) -> None:
        """Wait until the page has ``count`` prompts (the first is due at once, but posted by a wake-up)."""

        async def there() -> bool:
            posts = await self.store.web_posts(f"s{session_id}")
            return sum(1 for p in posts if p.thread_id) >= count

        await eventually(there, what=f"{count} prompts on the page of session {session_id}")


async def open_web_rig(tmp_path: Path, plans: list[Plan], *, store_url: str = "", **limits: Any) -> WebRig:
    """The rig on a SQLite file in ``tmp_path``, or on the PostgreSQL database at ``store_url``."""
    store = await PostgresStore.open(store_url) if store_url else await SqliteStore.open(tmp_path / "popup.db")
    chat = RecordingPort()
    settings = replace(WebSettings(enabled=True, host="127.0.0.1", port=0, secret=SECRET), **limits)
    engine_settings = EngineSettings(default_plan=plans[0].name, retry_delays=(0.05,))
    book = PlanBook(plans)
    web = WebAdapter(settings, store=store, plans=book, engine=engine_settings)
    engine = Engine(
        store=store,
        ports={"fake": chat, "web": web},
        plans=book,
        settings=engine_settings,
        wakeups=Wakeups(),
        clock=utc_now,
        web=web,
    )
    await web.start(engine)
    # The base URL is known once the port is: tests use the one the OS gave.
    web.settings = web.ctx.settings = replace(settings, port=web.port or 0)
    await engine.start()
    return WebRig(
        store=store,
        chat=chat,
        web=web,
        engine=engine,
        channel=ChannelRef(platform="fake", channel_id="C1"),
        db_path=tmp_path / "popup.db",
    )


@pytest.fixture
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WebRig]:
    """The rig on SQLite; a test runs on each store with
    ``@pytest.mark.parametrize("rig", ["sqlite", "postgres"], indirect=True)``."""
    with contextlib.ExitStack() as databases:
        on_postgres = getattr(request, "param", "sqlite") == "postgres"
        url = databases.enter_context(new_database_sync()) if on_postgres else ""
        rig = await open_web_rig(tmp_path, [offset_plan("day", prompts=("+0s", "+1h"), recap="+2h")], store_url=url)
        try:
            yield rig
        finally:
            await rig.engine.stop()
            await rig.web.stop()
            await rig.store.close()


class Browser:
    """One browser: its own cookies (so its own id and CSRF token)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str, *, status: int = 200) -> str:
        async with self.http.get(self._url(path)) as response:
            text = await response.text()
            assert response.status == status, (response.status, text[:500])
            if found := _CSRF.search(text):
                self.csrf = found[1]
            return text

    async def post(
        self, path: str, data: dict[str, str], *, status: int | None = None, json: bool = False, csrf: bool = True
    ) -> tuple[int, str]:
        form = {"csrf": self.csrf, **data} if csrf else data
        headers = {"Accept": "application/json"} if json else {}
        async with self.http.post(self._url(path), data=form, headers=headers, allow_redirects=True) as response:
            text = await response.text()
            if status is not None:
                assert response.status == status, (response.status, text[:500])
            if found := _CSRF.search(text):
                self.csrf = found[1]
            return response.status, text

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    async def close(self) -> None:
        await self.http.close()


Browsers = Callable[[], Browser]


@pytest.fixture
async def browsers(rig: WebRig) -> AsyncIterator[Browsers]:
    opened: list[Browser] = []

    def make() -> Browser:
        browser = Browser(rig.base)
        opened.append(browser)
        return browser

    try:
        yield make
    finally:
        for browser in opened:
            await browser.close()
