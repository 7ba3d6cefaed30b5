"""Several ``popup run`` processes split Discord's gateway: ``[discord] shard_ids`` and ``shard_count``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.client import PopupClient
from adapters.discord.settings import DiscordSettings
from bot.config import load_config
from tests.config_files import write_config
from tests.discord.conftest import PLANS, settings_for
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.recording_handler import RecordingHandler


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
