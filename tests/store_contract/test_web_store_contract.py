"""What the web side keeps (sessions.web.WebStore), against SQLite and PostgreSQL alike: the pages'
posts, one-time sign-in links, plans made in the dashboard, the article's versions and what is
published, and the reads of replies the pages show."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sessions.model import ChannelRef, MessageRef
from sessions.records import NewPrompt, NewReply, NewSession
from sessions.web import StoredPlan, WebStore
from tests.store_contract.conftest import AnyStore, Backend

T0 = datetime(2026, 9, 14, 8, 0, tzinfo=UTC)


def new_session(channel_id: str) -> NewSession:
    return NewSession(
        plan_name="p",
        title="Title",
        intro="Intro",
        timezone="UTC",
        channel=ChannelRef(platform="slack", channel_id=channel_id),
        anonymous=False,
        started_by="U1",
        started_at=T0,
        recap_at=T0 + timedelta(hours=8),
        prompts=(NewPrompt(text="q1", due_at=T0), NewPrompt(text="q2", due_at=T0 + timedelta(hours=1))),
    )


async def session_id(store: AnyStore, channel_id: str = "C1") -> int:
    session = await store.create_session(new_session(channel_id))
    assert session is not None
    return session.id


async def test_the_store_is_a_web_store(store: AnyStore) -> None:
    web_side: WebStore = store  # mypy checks the protocol...
    assert isinstance(web_side, WebStore)  # ...and what adapters/web/articles.py asks at run time


async def test_a_page_post_is_stored_once_and_a_thread_post_gets_a_thread_of_its_own(store: AnyStore) -> None:
    opening = await store.add_web_post("s1", "1:opening", '{"text": "Welcome"}', thread=False, at=T0)
    prompt = await store.add_web_post("s1", "1:prompt:1", '{"text": "q1"}', thread=True, at=T0 + timedelta(seconds=1))
    other = await store.add_web_post("s2", "2:prompt:1", '{"text": "q1"}', thread=True, at=T0)
    assert opening.thread_id is None
    assert prompt.thread_id is not None
    assert other.thread_id is not None
    assert prompt.thread_id != other.thread_id  # unique across every page
    assert (prompt.channel_id, prompt.key, prompt.content, prompt.posted_at) == (
        "s1",
        "1:prompt:1",
        '{"text": "q1"}',
        T0 + timedelta(seconds=1),
    )
    # Again under the same key (a post looked for after a crash): the one stored, nothing new.
    again = await store.add_web_post("s1", "1:prompt:1", '{"text": "other"}', thread=True, at=T0 + timedelta(hours=1))
    assert again == prompt
    racing = await asyncio.gather(
        *(store.add_web_post("s1", "1:recap", '{"text": "Recap"}', thread=False, at=T0) for _ in range(5))
    )
    assert len(set(racing)) == 1
    assert await store.web_posts("s1") == [opening, prompt, racing[0]]
    assert await store.web_post("1:prompt:1") == prompt
    assert await store.web_post("nowhere") is None
    assert await store.web_posts("s9") == []


async def test_a_sign_in_link_works_once_and_not_after_it_expires(store: AnyStore) -> None:
    member = '{"platform": "slack", "id": "U1", "name": "Olga \\u0000 \\ud83d\\ude00"}'
    await store.add_sign_in("hash-1", member, expires_at=T0 + timedelta(minutes=10))
    await store.add_sign_in("hash-2", member, expires_at=T0 + timedelta(minutes=10))
    assert await store.redeem_sign_in("unknown", now=T0) is None
    redeemed = await asyncio.gather(*(store.redeem_sign_in("hash-1", now=T0) for _ in range(5)))
    assert sorted(redeemed, key=lambda m: m or "") == [None, None, None, None, member]
    assert await store.redeem_sign_in("hash-1", now=T0) is None  # used
    assert await store.redeem_sign_in("hash-2", now=T0 + timedelta(minutes=10)) is None  # expired
    assert await store.redeem_sign_in("hash-2", now=T0 + timedelta(minutes=11)) is None


async def test_a_link_is_redeemed_once_across_stores_on_one_database(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    try:
        await first.add_sign_in("shared", '{"id": "U1"}', expires_at=T0 + timedelta(minutes=10))
        tries = [s.redeem_sign_in("shared", now=T0) for s in (first, second) for _ in range(3)]
        redeemed = await asyncio.gather(*tries)
        assert [m for m in redeemed if m is not None] == ['{"id": "U1"}']
    finally:
        await first.close()
        await second.close()


async def test_plans_made_on_the_web_are_listed_by_name_and_replaced_by_name(store: AnyStore) -> None:
    assert await store.web_plans() == []
    zeta = StoredPlan(name="zeta", plan='{"title": "Z"}', created_by="slack:U1", updated_at=T0)
    alpha = StoredPlan(name="alpha", plan='{"title": "A"}', created_by="discord:9", updated_at=T0)
    upper = StoredPlan(name="Beta", plan='{"title": "B"}', created_by="web:x", updated_at=T0)
    for plan in (zeta, alpha, upper):
        await store.save_web_plan(plan)
    assert await store.web_plans() == [upper, alpha, zeta]  # byte order, as both stores sort
    later = T0 + timedelta(hours=1)
    await store.save_web_plan(StoredPlan(name="zeta", plan='{"title": "Z2"}', created_by="slack:U2", updated_at=later))
    # The plan and its time change; who made it does not.
    assert (await store.web_plans())[-1] == StoredPlan(
        name="zeta", plan='{"title": "Z2"}', created_by="slack:U1", updated_at=later
    )


async def test_article_versions_and_what_is_published(store: AnyStore) -> None:
    first, second = await session_id(store, "C1"), await session_id(store, "C2")
    assert await store.article_versions(first) == []
    assert await store.published_article(first) is None
    words = "# The day\n\nA quote: nul\x00inside, 👩🏽‍💻, עברית\n"  # members' words, byte for byte
    draft = await store.add_article_version(first, words, saved_by="slack:U1", at=T0, publish=False)
    assert (draft.session_id, draft.markdown, draft.saved_by, draft.saved_at, draft.published_at) == (
        first,
        words,
        "slack:U1",
        T0,
        None,
    )
    assert await store.published_article(first) is None
    out = await store.add_article_version(first, "v2", saved_by="slack:U1", at=T0 + timedelta(minutes=1), publish=True)
    assert out.published_at == T0 + timedelta(minutes=1)
    newer_draft = await store.add_article_version(
        first, "v3 draft", saved_by="slack:U2", at=T0 + timedelta(minutes=2), publish=False
    )
    assert await store.article_versions(first) == [newer_draft, out, draft]  # newest first
    assert await store.published_article(first) == out  # a later draft does not unpublish it
    other = await store.add_article_version(
        second, "other", saved_by="web:x", at=T0 + timedelta(minutes=3), publish=True
    )
    republished = await store.add_article_version(
        first, "v4", saved_by="slack:U1", at=T0 + timedelta(minutes=4), publish=True
    )
    assert await store.published_article(first) == republished
    # The feed: each session's newest published version, most recently published first.
    assert await store.published_articles(10) == [republished, other]
    assert await store.published_articles(1) == [republished]


async def test_the_pages_read_standing_replies_by_channel(store: AnyStore) -> None:
    sid = await session_id(store)
    prompts = await store.prompts(sid)

    def reply(platform: str, channel: str, message: str, prompt: int, minutes: int, text: str) -> NewReply:
        return NewReply(
            session_id=sid,
            prompt_id=prompts[prompt].id,
            platform=platform,
            channel_id=channel,
            message_id=message,
            author_id="U2",
            author_name="Ana",
            text=text,
            created_at=T0 + timedelta(minutes=minutes),
        )

    await store.add_reply(reply("web", "s1", "w1", 0, 3, "from the page\x00"))
    await store.add_reply(reply("web", "s1", "w2", 0, 1, "earlier"))
    await store.add_reply(reply("web", "s1", "w3", 1, 2, "gone"))
    await store.add_reply(reply("slack", "C1", "m1", 0, 4, "from chat"))
    await store.delete_reply(MessageRef(channel=ChannelRef(platform="web", channel_id="s1"), message_id="w3"), at=T0)

    assert [r.text for r in await store.channel_replies(sid, "web", "s1")] == ["earlier", "from the page\x00"]
    found = await store.find_reply("web", "s1", "w1")
    assert found is not None
    assert (found.text, found.author_name, found.prompt_id) == ("from the page\x00", "Ana", prompts[0].id)
    assert await store.find_reply("web", "s1", "w3") is None  # deleted
    assert await store.find_reply("web", "s2", "w1") is None
    counts = await store.reply_counts(sid)
    assert [(c.prompt_id, c.platform, c.channel_id, c.replies) for c in counts] == [
        (prompts[0].id, "slack", "C1", 1),
        (prompts[0].id, "web", "s1", 2),
    ]
    assert [r.message_id for r in await store.newest_replies(sid, 2)] == ["m1", "w1"]
