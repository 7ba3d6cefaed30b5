"""Installs' bot tokens at rest: sealed under the newest key, opened with any key given, sealed
again under the newest at start (key rotation), and never shown in an error."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from adapters.slack.install_store import SlackInstallationStore
from adapters.slack.tokens import SealError, TokenSealer, fernet_keys
from sessions.installs import InstallRecord
from storage.sqlite import SqliteStore

TOKEN = "xoxb-the-secret-bot-token"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def record(sealed: str) -> InstallRecord:
    return InstallRecord(
        platform="slack", enterprise_id="", team_id="T1", org_wide=False, app_id="A1", bot_id="B1",
        bot_user_id="U1", bot_token=sealed, scopes="commands", installed_by="U9",
        installed_at=datetime(2026, 9, 14, tzinfo=UTC),
    )


def test_a_sealed_token_opens_with_any_key_given_and_not_without() -> None:
    sealed = TokenSealer(fernet_keys(OLD)).seal(TOKEN)
    assert sealed.startswith("fernet:")
    assert TOKEN not in sealed
    assert TokenSealer(fernet_keys(f"{NEW},{OLD}")).open(sealed) == TOKEN
    for wrong in (TokenSealer(fernet_keys(NEW)), TokenSealer()):
        with pytest.raises(SealError) as caught:
            wrong.open(sealed)
        assert "POPUP_TOKEN_KEY" in str(caught.value)
        assert TOKEN not in str(caught.value)
    assert TokenSealer().seal(TOKEN) == f"plain:{TOKEN}"  # store_tokens = "plain", by choice


def test_a_malformed_key_is_named_by_position_and_never_shown() -> None:
    with pytest.raises(ValueError, match="key 2 is not a Fernet key") as caught:
        fernet_keys(f"{NEW},my-own-password")
    assert "my-own-password" not in str(caught.value)


async def test_start_up_seals_old_and_plain_tokens_again_under_the_newest_key(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "popup.db")
    try:
        await store.save_install(record(TokenSealer(fernet_keys(OLD)).seal(TOKEN)))
        await store.save_install(dataclasses.replace(record(f"plain:{TOKEN}-two"), team_id="T2"))
        rotated = SlackInstallationStore(store, TokenSealer(fernet_keys(f"{NEW},{OLD}")))
        assert await rotated.reseal() == 2
        assert await rotated.reseal() == 0  # all under the newest key now
        only_new = SlackInstallationStore(store, TokenSealer(fernet_keys(NEW)))
        for team, token in (("T1", TOKEN), ("T2", f"{TOKEN}-two")):
            bot = await only_new.bot_for(enterprise_id="", team_id=team)
            assert bot is not None
            assert bot.token == token
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "popup.db") as db:
        stored = [row[0] for row in db.execute("SELECT bot_token FROM installs")]
    assert all(s.startswith("fernet:") and TOKEN not in s for s in stored)
