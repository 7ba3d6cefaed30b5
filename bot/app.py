"""Wiring: the store, the adapters enabled in the config and the engine, started and stopped in order."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
from typing import TYPE_CHECKING, TextIO

from adapters.base import Adapter
from adapters.console import ConsoleAdapter
from bot.config import Config
from bot.loop import tune_for_serving
from bot.prose_model import prose_model
from sessions.cluster import Cluster, SessionLeases
from sessions.engine import Engine, RecapBuilder, build_recap
from sessions.installs import InstallStore
from sessions.plan_book import PlanBook
from sessions.records import SessionRecord
from sessions.store import Store
from sessions.wakeups import Wakeups, utc_now
from storage.open import open_store

if TYPE_CHECKING:
    from adapters.web.server import PageHandler
    from sessions.recap import Recap
    from storage.open import OpenedStore

_log = logging.getLogger(__name__)


def build_adapters(
    config: Config,
    *,
    console_out: TextIO | None = None,
    console_stdin: bool = True,
    installs: InstallStore | None = None,
) -> list[Adapter]:
    """The adapters ``config`` enables. ``installs`` keeps Slack's OAuth installs (the store); with
    ``[web]`` on, the install pages are left for the web server (:func:`install_pages`)."""
    adapters: list[Adapter] = []
    if config.console:
        adapters.append(ConsoleAdapter(out=console_out, read_stdin=console_stdin))
    # The SDKs are imported only when their platform is enabled: it keeps start-up quick.
    if config.slack.enabled:
        from adapters.slack.adapter import SlackAdapter

        adapters.append(SlackAdapter(config.slack, installs=installs, install_pages_here=not config.web.enabled))
    if config.discord.enabled:
        from adapters.discord.adapter import DiscordAdapter

        adapters.append(DiscordAdapter(config.discord, plan_names=[p.name for p in config.plans]))
    if config.email.enabled:
        from adapters.email.adapter import EmailAdapter

        adapters.append(EmailAdapter(config.email))
    return adapters


def install_pages(adapters: list[Adapter]) -> dict[str, PageHandler]:
    """The pages adapters ask the web server to serve: Slack's "Add to Slack" page and its redirect
    (the web side knows nothing of Slack; it serves what it is handed)."""
    pages: dict[str, PageHandler] = {}
    if any(adapter.platform == "slack" for adapter in adapters):
        from adapters.slack.adapter import SlackAdapter

        for adapter in adapters:
            if isinstance(adapter, SlackAdapter):
                pages.update(adapter.install_pages())
    return pages


def recap_builder(config: Config) -> RecapBuilder:
    """The engine's recap: with ``[story] llm_base_url`` set, its story may be rewritten by the model."""
    model = prose_model(config.story)
    if model is None:
        return build_recap

    async def build(store: Store, session: SessionRecord) -> Recap:
        from sessions.recap import build_recap as build_with

        return await build_with(store, session, model=model)

    return build


class App:
    """One running Popup: start() returns when every adapter is ready; stop() is graceful."""

    def __init__(self, config: Config, *, console_out: TextIO | None = None, console_stdin: bool = True) -> None:
        self.config = config
        self._console_out = console_out
        self._console_stdin = console_stdin
        self.store: OpenedStore | None = None
        self.engine: Engine | None = None
        self.adapters: list[Adapter] = []
        self._started: list[Adapter] = []

    async def start(self) -> None:
        config = self.config
        self.store = await open_store(config.storage)
        self.adapters = build_adapters(
            config, console_out=self._console_out, console_stdin=self._console_stdin, installs=self.store
        )
        plans = PlanBook(config.plans)
        web = None
        if config.web.enabled:
            # The web side: every session's page is a channel of its own; plans made there join the book.
            from adapters.web.adapter import WebAdapter

            web = WebAdapter(
                config.web, store=self.store, plans=plans, engine=config.engine, pages=install_pages(self.adapters)
            )
            self.adapters.append(web)
        cluster = None
        if isinstance(self.store, SessionLeases):  # a database other processes may share
            holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            cluster = Cluster(self.store, holder=holder, lease_seconds=config.storage.lease_seconds)
        self.engine = Engine(
            store=self.store,
            ports={adapter.platform: adapter for adapter in self.adapters},
            plans=plans,
            settings=config.engine,
            wakeups=Wakeups(),
            clock=utc_now,
            web=web,
            recap=recap_builder(config),
            cluster=cluster,
        )
        try:
            for adapter in self.adapters:
                await adapter.start(self.engine)
                self._started.append(adapter)
            await self.engine.start()
        except BaseException:
            await self.stop()
            raise
        platforms = ", ".join(a.platform for a in self.adapters)
        _log.info("popup is ready (%s); database %s", platforms, config.storage.where)

    async def stop(self) -> None:
        # The engine first: its work under way (a prompt or recap being posted) may finish
        # through the adapters, which are still connected. Then the adapters, which finish the
        # events they have taken in. The store last, once its writer has committed all of it.
        if self.engine is not None:
            await self.engine.stop()
            self.engine = None
        for adapter in reversed(self._started):
            try:
                await adapter.stop()
            except Exception:
                _log.exception("stopping %s failed", adapter.platform)
        self._started.clear()
        if self.store is not None:
            await self.store.close()
            self.store = None


async def run_until_signalled(config: Config) -> None:
    app = App(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    tune_for_serving()
    if config.console:
        print("Type /popup help for the commands; other lines reply in the newest prompt's thread.", file=sys.stderr)
    try:
        await stop.wait()
        _log.info("shutting down")
    finally:
        await app.stop()
