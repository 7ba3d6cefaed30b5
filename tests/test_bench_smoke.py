"""Every benchmark runs end to end at tiny sizes, so the bench code cannot rot unnoticed.

No timing is asserted anywhere: this machine is noisy, and ``make bench`` is where figures live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import __main__ as suite
from bench import discord_ingest, ingest, many_channels, punctuality, slack_ack, startup
from storage.sqlite import SqliteStore

pytestmark = pytest.mark.slow


def test_ingest_at_tiny_size() -> None:
    result = ingest.run(replies=300, concurrency=20, rate=1000, seconds=0.2, rounds=1)
    assert result["replies"] == 300
    assert result["offered_replies"] == 200
    assert result["engine_per_s"] > 0
    assert result["raw_per_s"] > 0
    assert "ingest:" in ingest.report(result)


def test_punctuality_at_tiny_size() -> None:
    result = punctuality.run(sessions=2, concurrency=10, per_session=1)
    assert result["idle"]["prompts"] == 2
    assert result["loaded"]["prompts"] == 2
    assert result["loaded"]["ingested"] > 0
    assert "punctuality:" in punctuality.report(result)


def test_startup_at_tiny_size() -> None:
    result = startup.run(sessions=3, replies=2, repeats=1)
    assert result["ready_s"] > 0
    assert "startup:" in startup.report(result)


def test_slack_ack_at_tiny_size() -> None:
    result = slack_ack.run(requests=40, concurrency=5, busy_rate=50, members=5)
    assert result["failures"] == {}
    assert result["stored"] == result["expected"]
    assert "slack ack:" in slack_ack.report(result)


def test_discord_ingest_at_tiny_size() -> None:
    result = discord_ingest.run(replies=60)
    assert result["replies"] == 60
    assert result["peak_rss_mb"] > 0
    assert "discord ingest:" in discord_ingest.report(result)


def test_recap_plugs_in_at_tiny_size() -> None:
    from bench import recap

    result = recap.run(sizes=(500,))
    assert set(result["sizes"]) == {"500"}


def test_many_channels_at_tiny_size() -> None:
    result = many_channels.run(per_platform=3, spacing=1, rounds=2)
    assert result["channels"] == 6
    assert result["reached"] == {"prompt:1": 6, "prompt:2": 6, "recap": 6}
    assert result["duplicates"] == 0
    assert "many channels:" in many_channels.report(result)
    assert suite.summary({"many_channels": result}).startswith("bench: 6 channels: prompt ")


def test_the_summary_line_has_the_issue_form() -> None:
    figures: dict[str, dict[str, Any] | None] = {
        "ingest": {"ratio": 0.31, "engine_per_s": 61000.0, "p99_ms": 12.0},
        "recap": {"sizes": {"1000000": {"ratio": 1.8, "recap_s": 6.2, "peak_rss_mb": 210.0}}},
        "punctuality": {"p99_ms": 8.0},
        "slack_ack": {"p99_ms": 14.0},
        "startup": {"ready_s": 0.42},
        "discord_ingest": {"per_s": 5200.0, "peak_rss_mb": 98.0},
    }
    assert suite.summary(figures) == (
        "bench: ingest 0.31x raw (61000/s, p99 12 ms @2k/s); recap 1.8x floor (1M 6.2 s, 210 MB); "
        "lateness p99 8 ms; slack ack p99 14 ms; startup 0.42 s; discord 5200/s 98 MB"
    )


async def test_the_store_commits_a_batch_in_one_trip(tmp_path: Path) -> None:
    """The group commit runs BEGIN, executemany and COMMIT in one call on aiosqlite's thread,
    through aiosqlite's private ``_execute``; if an aiosqlite upgrade takes that away the store
    falls back to the public calls (correct, but slower): this says so."""
    store = await SqliteStore.open(tmp_path / "t.db")
    try:
        assert store._writer.one_trip is not None
    finally:
        await store.close()


def test_many_sessions_at_tiny_size() -> None:
    from bench import many_sessions

    result = many_sessions.run(sessions=3, rate=50, repeats=1, lead=1.0, gap=0.2)
    assert result["lateness"]["prompts"] == 3 * many_sessions.PROMPTS
    assert result["lateness"]["replies_stored"] == result["lateness"]["replies_offered"] > 0
    assert result["resume_s"] > 0
    assert "many sessions:" in many_sessions.report(result)
    assert suite.summary({"many_sessions": result}).startswith("bench: many: lateness p99 ")


def test_postgres_ingest_at_tiny_size() -> None:
    from bench import postgres_ingest
    from tests.postgres import require_postgres

    require_postgres()
    result = postgres_ingest.run(replies=300, concurrency=20, rate=600, seconds=0.5, rounds=1)
    assert result["replies"] == 300
    assert result["cluster_replies"] == 300
    assert result["cluster_offered_replies"] == 300
    assert result["engine_per_s"] > 0
    assert result["raw_per_s"] > 0
    assert "3 processes:" in postgres_ingest.report(result)
    assert suite.summary({"postgres_ingest": result}).startswith("bench: postgres ")
