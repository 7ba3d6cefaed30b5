"""Where the bot is installed (sessions.installs.InstallStore), against SQLite and PostgreSQL alike:
installations found by team or by org, replaced and deleted; install states taken once and only
before they expire; which workspace a channel is in; and a second store on the same database (another
process) sees all of it."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from sessions.installs import InstallRecord, InstallStore, WorkspaceKey
from tests.store_contract.conftest import AnyStore, Backend

T0 = datetime(2026, 9, 14, 8, 0, tzinfo=UTC)


def install(team_id: str, *, enterprise_id: str = "", org_wide: bool = False, token: str = "sealed") -> InstallRecord:
    return InstallRecord(
        platform="slack",
        enterprise_id=enterprise_id,
        team_id=team_id,
        org_wide=org_wide,
        app_id="A1",
        bot_id=f"B{team_id or enterprise_id}",
        bot_user_id=f"U{team_id or enterprise_id}",
        bot_token=token,
        scopes="commands,chat:write",
        installed_by="UINSTALLER",
        installed_at=T0,
        team_name=f"team {team_id}",
        enterprise_name="Org" if enterprise_id else "",
    )


async def test_the_store_is_an_install_store(store: AnyStore) -> None:
    installs: InstallStore = store
    assert isinstance(installs, InstallStore)


async def test_an_install_is_kept_whole_and_found_by_its_team(store: AnyStore) -> None:
    mine = install("T1")
    await store.save_install(mine)
    assert await store.find_install("slack", enterprise_id="", team_id="T1") == mine
    # A slash command from a workspace on an org may name its team only, or the org too.
    on_org = install("T2", enterprise_id="E1")
    await store.save_install(on_org)
    assert await store.find_install("slack", enterprise_id="", team_id="T2") == on_org
    assert await store.find_install("slack", enterprise_id="E1", team_id="T2") == on_org
    assert await store.find_install("slack", enterprise_id="", team_id="T9") is None
    assert await store.find_install("slack", enterprise_id="E1", team_id="T9") is None  # no org-wide install
    assert await store.find_install("slack", enterprise_id="", team_id="") is None  # what is not named matches nothing
    assert await store.find_install("discord", enterprise_id="", team_id="T1") is None


async def test_an_org_wide_install_serves_every_team_of_its_org_after_their_own(store: AnyStore) -> None:
    org = install("", enterprise_id="E1", org_wide=True)
    await store.save_install(org)
    assert await store.find_install("slack", enterprise_id="E1", team_id="T7") == org
    assert await store.find_install("slack", enterprise_id="E1", team_id="") == org
    assert await store.find_install("slack", enterprise_id="E2", team_id="T7") is None
    own = install("T7", enterprise_id="E1")
    await store.save_install(own)
    assert await store.find_install("slack", enterprise_id="E1", team_id="T7") == own
    assert await store.installs("slack") == [org, own]


async def test_a_reinstall_replaces_and_a_delete_forgets_exactly_its_key(store: AnyStore) -> None:
    await store.save_install(install("T1", token="old"))
    await store.save_install(install("", enterprise_id="E1", org_wide=True))
    newer = dataclasses.replace(install("T1", token="new"), scopes="commands", installed_at=T0 + timedelta(days=1))
    await store.save_install(newer)
    assert await store.find_install("slack", enterprise_id="", team_id="T1") == newer
    assert len(await store.installs("slack")) == 2
    assert await store.delete_install("slack", WorkspaceKey(team_id="T1")) is True
    assert await store.delete_install("slack", WorkspaceKey(team_id="T1")) is False
    assert await store.find_install("slack", enterprise_id="", team_id="T1") is None
    assert await store.delete_install("slack", WorkspaceKey(enterprise_id="E1")) is True
    assert await store.installs("slack") == []


async def test_an_install_state_is_taken_once_and_only_before_it_expires(store: AnyStore) -> None:
    await store.issue_install_state("s-fresh", now=T0, expires_at=T0 + timedelta(minutes=10))
    await store.issue_install_state("s-stale", now=T0, expires_at=T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=5)
    assert await store.consume_install_state("s-fresh", now=later) is True
    assert await store.consume_install_state("s-fresh", now=later) is False  # replayed
    assert await store.consume_install_state("s-stale", now=later) is False  # expired
    assert await store.consume_install_state("s-forged", now=later) is False  # never issued


async def test_racing_consumers_of_one_state_get_one_true(backend: Backend, store: AnyStore) -> None:
    await store.issue_install_state("s1", now=T0, expires_at=T0 + timedelta(minutes=10))
    other = await backend.open()  # another process on the same database
    try:
        taken = await asyncio.gather(
            *(s.consume_install_state("s1", now=T0) for s in (store, other, store, other))
        )
    finally:
        await other.close()
    assert sorted(taken) == [False, False, False, True]


async def test_expired_states_are_dropped_when_a_new_one_is_issued(backend: Backend, store: AnyStore) -> None:
    for n in range(5):
        await store.issue_install_state(f"old{n}", now=T0, expires_at=T0 + timedelta(minutes=1))
    await store.issue_install_state("new", now=T0 + timedelta(hours=1), expires_at=T0 + timedelta(hours=2))
    assert await backend.rows(store, "SELECT state FROM install_states") == [("new",)]


async def test_the_workspace_of_a_channel_is_remembered_and_corrected(backend: Backend, store: AnyStore) -> None:
    assert await store.channel_workspace("slack", "C1") is None
    await store.note_channel_workspace("slack", "C1", WorkspaceKey(team_id="T1"))
    await store.note_channel_workspace("slack", "C2", WorkspaceKey(enterprise_id="E1", team_id="T2"))
    assert await store.channel_workspace("slack", "C1") == WorkspaceKey(team_id="T1")
    assert await store.channel_workspace("discord", "C1") is None
    await store.note_channel_workspace("slack", "C1", WorkspaceKey(team_id="T3"))  # moved (a shared channel)
    other = await backend.open()
    try:
        assert await other.channel_workspace("slack", "C1") == WorkspaceKey(team_id="T3")
        assert await other.channel_workspace("slack", "C2") == WorkspaceKey(enterprise_id="E1", team_id="T2")
        await other.save_install(install("T5"))
    finally:
        await other.close()
    assert await store.find_install("slack", enterprise_id="", team_id="T5") == install("T5")
