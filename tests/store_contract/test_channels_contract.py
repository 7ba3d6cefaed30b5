"""The store's contract for sessions across channels and platforms (issue 13), on SQLite and
PostgreSQL alike: join codes, attaching and detaching channels, their names and figures, link
codes and the voices of linked members. The engine's use of them is tested in test_multichannel.py."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from sessions.model import ChannelRef, MessageRef, Posted, ThreadRef
from sessions.records import ChannelFigures, LinkedVoices, NewReply, SessionChannel, SessionState
from tests.store_contract.conftest import AnyStore, Backend
from tests.store_contract.records import T0, new_session

SLACK = ChannelRef(platform="slack", channel_id="CLEARN")
DISCORD = ChannelRef(platform="discord", channel_id="987")
DISCORD_TOO = ChannelRef(platform="discord", channel_id="654")


async def started(store: AnyStore, channel: ChannelRef = SLACK, **fields: object) -> int:
    session = await store.create_session(dataclasses.replace(new_session(channel), **fields))  # type: ignore[arg-type]
    assert session is not None
    return session.id


def said(session_id: int, prompt_id: int, where: ChannelRef, message_id: str, author: str) -> NewReply:
    return NewReply(
        session_id=session_id,
        prompt_id=prompt_id,
        platform=where.platform,
        channel_id=where.channel_id,
        message_id=message_id,
        author_id=author,
        author_name=author.lower(),
        text=f"{author} says {message_id}",
        created_at=T0 + timedelta(minutes=1),
    )


async def test_a_session_keeps_its_join_code_pulse_and_circle_channels(store: AnyStore) -> None:
    busy = await started(store, DISCORD_TOO)
    sid = await started(
        store,
        SLACK,
        join_code="abcd-efgh-ijklm",
        pulse_at=T0 + timedelta(hours=4),
        more_channels=(DISCORD, DISCORD_TOO),
        channel_names={SLACK: "#learning", DISCORD: "#general"},
    )
    session = await store.get_session(sid)
    assert session is not None
    assert session.join_code == "abcd-efgh-ijklm"
    assert session.pulse_at == T0 + timedelta(hours=4)
    assert session.channels == (SLACK, DISCORD)  # the circle's busy channel is left out
    assert await store.session_channels(sid) == [
        SessionChannel(channel=SLACK, name="#learning"),
        SessionChannel(channel=DISCORD, name="#general"),
    ]
    assert (await store.active_session(DISCORD_TOO)) == await store.get_session(busy)
    assert await store.active_session(DISCORD) == session


async def test_a_join_code_answers_only_while_its_session_is_active(store: AnyStore) -> None:
    sid = await started(store, join_code="abcd-efgh-ijklm")
    found = await store.session_by_join_code("abcd-efgh-ijklm")
    assert found is not None
    assert found.id == sid
    assert await store.set_session_state(sid, [SessionState.SCHEDULED], SessionState.RUNNING)
    assert await store.session_by_join_code("abcd-efgh-ijklm") == await store.get_session(sid)
    assert await store.session_by_join_code("zzzz-zzzz-zzzzz") is None
    assert await store.set_session_state(sid, [SessionState.RUNNING], SessionState.CLOSED, at=T0)
    assert await store.session_by_join_code("abcd-efgh-ijklm") is None


async def test_attach_and_detach_a_channel(store: AnyStore) -> None:
    sid = await started(store)
    assert await store.attach_channel(sid, DISCORD, name="#general", joined_by="discord:111") is None
    assert await store.attach_channel(sid, DISCORD, name="#again", joined_by="discord:222") is None  # there already
    assert await store.attach_channel(sid, DISCORD_TOO) is None
    session = await store.get_session(sid)
    assert session is not None
    assert session.channels == (SLACK, DISCORD, DISCORD_TOO)
    assert await store.session_channels(sid) == [
        SessionChannel(channel=SLACK),
        SessionChannel(channel=DISCORD, name="#general", joined_by="discord:111"),  # as it first joined
        SessionChannel(channel=DISCORD_TOO),
    ]
    assert await store.active_session(DISCORD) == session

    other = await started(store, ChannelRef(platform="slack", channel_id="COTHER"))
    assert await store.attach_channel(other, DISCORD) == sid  # busy: the session that has it

    assert await store.detach_channel(sid, DISCORD)
    assert not await store.detach_channel(sid, DISCORD)
    assert await store.active_session(DISCORD) is None
    assert await store.attach_channel(other, DISCORD) is None
    moved = await store.get_session(sid)
    assert moved is not None
    assert moved.channels == (SLACK, DISCORD_TOO)


async def test_two_sessions_racing_for_one_channel_get_it_once(backend: Backend) -> None:
    stores = [await backend.open() for _ in range(2)]
    try:
        first = await started(stores[0], SLACK)
        second = await started(stores[0], ChannelRef(platform="slack", channel_id="C2"))
        results = await asyncio.gather(
            *(stores[n % 2].attach_channel((first, second)[n % 2], DISCORD) for n in range(6)),
            stores[1].create_session(new_session(DISCORD)),
        )
        sessions = [await stores[1].get_session(sid) for sid in (first, second)]
        holders = [s.id for s in sessions if s is not None and DISCORD in s.channels]
        started_there = results[-1] is not None
        assert len(holders) + started_there == 1
        assert results[:-1].count(None) == (6 if started_there else 3)  # the others were told who has it
    finally:
        for store in stores:
            await store.close()


async def test_channel_figures_count_a_discord_thread_for_its_channel(store: AnyStore) -> None:
    sid = await started(store, SLACK)
    assert await store.attach_channel(sid, DISCORD) is None
    prompt = (await store.prompts(sid))[0]
    post = await store.claim_post(sid, "prompt:1", DISCORD, prompt_id=prompt.id)
    thread = ThreadRef(channel=DISCORD, thread_id="5555")
    opened = Posted(message=MessageRef(channel=DISCORD, message_id="5555"), thread=thread)
    await store.record_posted(post.id, opened, at=T0)
    in_thread = ChannelRef(platform="discord", channel_id="5555")  # a Discord reply lives in its thread
    await store.add_reply(said(sid, prompt.id, SLACK, "1.1", "UADA"))
    await store.add_reply(said(sid, prompt.id, SLACK, "1.2", "UADA"))
    await store.add_reply(said(sid, prompt.id, SLACK, "1.3", "UBOB"))
    await store.add_reply(said(sid, prompt.id, in_thread, "m1", "111"))
    await store.add_reply(said(sid, prompt.id, in_thread, "m2", "222"))
    await store.set_reaction(MessageRef(channel=in_thread, message_id="m1"), "UADA", "👍", added=True, at=T0)
    await store.delete_reply(MessageRef(channel=SLACK, message_id="1.3"), at=T0 + timedelta(minutes=2))
    assert await store.channel_figures(sid) == [
        ChannelFigures(channel=DISCORD, replies=2, people=2, reactions=1),
        ChannelFigures(channel=SLACK, replies=2, people=1, reactions=0),
    ]


async def test_a_link_code_is_used_once_by_another_identity_while_fresh(store: AnyStore) -> None:
    made = T0
    fresh = made - timedelta(minutes=10)
    await store.add_link_code("code-1", "slack", "UADA", at=made)
    assert await store.redeem_link_code("code-1", "discord", "111", at=made, not_before=fresh) == ("slack", "UADA")
    assert await store.redeem_link_code("code-1", "discord", "222", at=made, not_before=fresh) is None  # used
    assert await store.redeem_link_code("nope", "discord", "111", at=made, not_before=fresh) is None

    await store.add_link_code("code-2", "slack", "UBOB", at=made)
    late = made + timedelta(minutes=11)
    assert await store.redeem_link_code("code-2", "discord", "222", at=late, not_before=late) is None  # too old
    assert await store.redeem_link_code("code-2", "discord", "222", at=made, not_before=fresh) is None  # used up

    await store.add_link_code("code-3", "slack", "UBOB", at=made)
    assert await store.redeem_link_code("code-3", "slack", "UBOB", at=made, not_before=fresh) is None  # its maker


async def test_linked_voices_are_one_person_across_platforms(store: AnyStore) -> None:
    sid = await started(store, SLACK)
    assert await store.attach_channel(sid, DISCORD) is None
    first, second = (p.id for p in await store.prompts(sid))
    # Ada writes from Slack and Discord, to both prompts from Slack and to the first from Discord.
    await store.add_reply(said(sid, first, SLACK, "1.1", "UADA"))
    await store.add_reply(said(sid, second, SLACK, "1.2", "UADA"))
    await store.add_reply(said(sid, first, DISCORD, "m1", "111"))
    await store.add_reply(said(sid, first, DISCORD, "m2", "222"))  # Bob, never linked
    assert await store.linked_voices(sid) == []

    await store.add_link_code("code-1", "slack", "UADA", at=T0)
    assert await store.redeem_link_code("code-1", "discord", "111", at=T0, not_before=T0) == ("slack", "UADA")
    both = (("discord", "111", 1), ("slack", "UADA", 2))
    ada = LinkedVoices(person="slack:UADA", identities=both, shared_prompts=(first,))
    assert await store.linked_voices(sid) == [ada]

    # An identity that had linked before brings its whole group into the maker's.
    await store.add_link_code("code-2", "discord", "222", at=T0)
    await store.add_link_code("code-3", "slack", "UCAT", at=T0)
    assert await store.redeem_link_code("code-2", "slack", "UCAT", at=T0, not_before=T0) == ("discord", "222")
    assert await store.redeem_link_code("code-3", "discord", "111", at=T0, not_before=T0) == ("slack", "UCAT")
    await store.add_reply(said(sid, second, SLACK, "1.3", "UCAT"))
    [voices] = await store.linked_voices(sid)
    assert voices.person == "discord:222"
    assert voices.identities == (
        ("discord", "111", 1),
        ("discord", "222", 1),
        ("slack", "UADA", 2),
        ("slack", "UCAT", 1),
    )
    assert voices.shared_prompts == (first, second)
