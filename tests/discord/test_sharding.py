"""Several ``popup run`` processes split Discord's gateway: ``[discord] shard_ids`` and ``shard_count``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.client import PopupClient
from adapters.discord.mapping import PLATFORM
from adapters.discord.settings import DiscordSettings
from bot.config import load_config
from sessions.errors import DeliveryError
from sessions.model import ChannelRef, Message
from tests.config_files import write_config
from tests.discord.conftest import PLANS, settings_for
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.recording_handler import RecordingHandler
from tests.support import eventually


def process_settings(tmp_path: Path, shard: int, count: int) -> DiscordSettings:
    folder = tmp_path / f"process-{shard}"
    folder.mkdir()
    path = write_config(folder, discord={"shard_ids": [shard], "shard_count": count})
    return load_config(path, env={}).discord


def test_the_processes_of_a_cluster_serve_every_guild_once(tmp_path: Path) -> None:
    processes = [process_settings(tmp_path, shard, 3) for shard in range(3)]
    assert [p.shard for p in processes] == [(0, 3), (1, 3), (2, 3)]
    # Snowflakes as Discord makes them: a timestamp above bit 22, worker and sequence below.
    guilds = [(1_700_000_000_000 + n * 7_919) << 22 | n % 4096 for n in range(300)]
    for guild in guilds:
        assert sum(p.serves(guild) for p in processes) == 1, guild
    shares = [sum(p.serves(guild) for guild in guilds) for p in processes]
    assert all(share > 50 for share in shares), shares  # each gets a share, none all of them


def test_one_process_alone_is_unsharded_and_serves_every_guild(tmp_path: Path) -> None:
    alone = load_config(write_config(tmp_path), env={}).discord
    assert alone.shard is None
    assert alone.serves(1234 << 22)


async def test_a_process_identifies_as_its_shard(fake: FakeDiscord, handler: RecordingHandler) -> None:
    sharded = replace(settings_for(fake), shard_ids=(1,), shard_count=2)
    adapter = DiscordAdapter(sharded, plan_names=PLANS, guild_ready_timeout=0.05, ready_timeout=10.0)
    await adapter.start(handler)
    try:
        client = adapter.client
        assert isinstance(client, PopupClient)
        assert (client.shard_id, client.shard_count) == (1, 2)
        assert fake.identified_with is not None
        assert fake.identified_with["shard"] == [1, 2]
    finally:
        await adapter.stop()


def sharded(fake: FakeDiscord, shard: int, count: int) -> DiscordAdapter:
    settings = replace(settings_for(fake), shard_ids=(shard,), shard_count=count)
    return DiscordAdapter(settings, plan_names=PLANS, guild_ready_timeout=0.05, ready_timeout=10.0)


async def test_a_guilds_events_reach_only_the_shard_that_owns_it(handler: RecordingHandler) -> None:
    """Two processes' connections to one gateway at once: the guild, its messages and its slash
    commands go to the shard of ``(guild_id >> 22) % shard_count`` only, as Discord does."""
    fake = FakeDiscord(guild_shard=(1, 2))
    await fake.start()
    others = RecordingHandler()
    owner, other = sharded(fake, 1, 2), sharded(fake, 0, 2)
    try:
        await owner.start(handler)
        await other.start(others)  # identifies last: the newest connection is not the owner
        assert (fake.guild_id >> 22) % 2 == 1
        assert owner.client is not None
        assert other.client is not None
        assert owner.client.get_guild(fake.guild_id) is not None
        assert list(other.client.guilds) == []
        # Any process may post (REST); the answers in the thread reach the owner's connection only.
        channel = ChannelRef(platform=PLATFORM, channel_id=str(fake.channel_id))
        posted = await other.open_thread(channel, Message(title="Prompt"), key="k-shard")
        assert posted.thread is not None
        said = await fake.say(int(posted.thread.thread_id), fake.max, "to the guild's own shard")
        await fake.invoke(fake.olga, "status")
        await eventually(lambda: len(handler.events) == 1 and len(handler.commands) == 1, what="the owner's events")
        assert handler.events[0].message.message_id == said["id"]
        assert others.events == []
        assert others.commands == []
    finally:
        await other.stop()
        await owner.stop()
        await fake.close()


async def test_the_gateway_refuses_a_shard_outside_the_count(handler: RecordingHandler) -> None:
    fake = FakeDiscord()
    await fake.start()
    adapter = sharded(fake, 2, 2)
    try:
        with pytest.raises(DeliveryError):
            await adapter.start(handler)
    finally:
        await adapter.stop()
        await fake.close()
