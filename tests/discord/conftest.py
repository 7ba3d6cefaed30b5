"""Fixtures: a running fake Discord and an adapter pointed at it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.settings import DiscordSettings
from tests.fakes.discord_server import FakeDiscord

PLANS = ("learning-culture", "retro", "Lunch & Learn")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.close()


def settings_for(fake: FakeDiscord, *, guild_ids: tuple[int, ...] | None = None) -> DiscordSettings:
    return DiscordSettings(
        enabled=True,
        guild_ids=(fake.guild_id,) if guild_ids is None else guild_ids,
        api_base_url=fake.api_base_url,
        gateway_url=fake.gateway_url,
        token=fake.token,
    )


def make_adapter(fake: FakeDiscord, **kwargs: Any) -> DiscordAdapter:
    guild_ids = kwargs.pop("guild_ids", None)
    kwargs.setdefault("plan_names", PLANS)
    kwargs.setdefault("guild_ready_timeout", 0.05)
    kwargs.setdefault("ready_timeout", 10.0)
    return DiscordAdapter(settings_for(fake, guild_ids=guild_ids), **kwargs)


@pytest.fixture(autouse=True)
def _adapter_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The adapter's INFO lines (connects, back-fills) in a failing test's report."""
    caplog.set_level(logging.INFO, logger="adapters.discord")
