"""The organiser's dashboard over HTTP: one-time sign-in, live view, next/stop/cancel with the
chat's rights, plans made on the web, and the article edited, published, fed and exported."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from adapters.web.articles import published_export
from sessions.errors import ChannelBusy
from sessions.model import ChannelRef, CommandInvoked, Member
from sessions.recap.exports import export
from sessions.records import PromptState, SessionState
from sessions.wakeups import utc_now
from tests.support import eventually, make_rig, member, offset_plan
from tests.web.conftest import ORGANISER, Browser, Browsers, WebRig, open_web_rig

_LINK = re.compile(r"(http://\S+/signin/\S+)")


async def sign_in(rig: WebRig, browser: Browser, who: Member = ORGANISER) -> None:
    answer = await rig.command("web", who=who)
    found = _LINK.search(answer)
    assert found, answer
    await browser.get(found[1])
    status, page = await browser.post(found[1], {})
    assert status == 200, page[:500]
    assert "Your sessions" in page


@pytest.mark.parametrize("rig", ["sqlite", "postgres"], indirect=True)
async def test_a_sign_in_link_works_once(rig: WebRig, browsers: Browsers) -> None:
    answer = await rig.command("web")
    link = _LINK.search(answer)
    assert link
    first, second = browsers(), browsers()
    await first.get(link[1])
    await second.get(link[1])
    status, _ = await first.post(link[1], {})
    assert status == 200
    status, page = await second.post(link[1], {})
    assert status == 403
    assert "used already" in page
    await second.get("/dash", status=403)
    stored = await rig.store.redeem_sign_in("x", now=utc_now())
    assert stored is None


async def test_the_link_is_kept_only_as_a_hash(rig: WebRig) -> None:
    answer = await rig.command("web")
    link = _LINK.search(answer)
    assert link
    token = link[1].rsplit("/", 1)[1]
    raw = rig.db_path.read_bytes() + Path(f"{rig.db_path}-wal").read_bytes()
    assert token.encode() not in raw


async def test_an_expired_link_does_not_sign_in(rig: WebRig, browsers: Browsers) -> None:
    from dataclasses import replace

    rig.web.settings = replace(rig.web.settings, sign_in_ttl_seconds=-1)
    link = _LINK.search(await rig.command("web"))
    assert link
    browser = browsers()
    await browser.get(link[1])
    status, _ = await browser.post(link[1], {})
    assert status == 403


async def test_without_the_web_the_word_says_so(tmp_path: Path) -> None:
    plain = await make_rig(tmp_path / "plain.db", [offset_plan()])
    try:
        assert "not switched on" in await plain.command("web")
    finally:
        await plain.close()


async def test_the_organiser_moves_the_session_on_from_the_dashboard(rig: WebRig, browsers: Browsers) -> None:
    session_id, _ = await rig.start_session()
    olga = browsers()
    await sign_in(rig, olga)
    page = await olga.get(f"/dash/s/{session_id}")
    assert "Prompt 1 of day?" in page
    assert 'name="action" value="next"' in page
    _, done = await olga.post(f"/dash/s/{session_id}/act", {"action": "next"}, status=200)
    assert "Prompt 2 of 2 posted." in done
    prompts = await rig.store.prompts(session_id)
    assert [p.state for p in prompts] == [PromptState.POSTED, PromptState.POSTED]
    _, done = await olga.post(f"/dash/s/{session_id}/act", {"action": "stop"}, status=200)
    assert "closed; the recap is posted" in done
    session = await rig.store.get_session(session_id)
    assert session is not None
    assert session.state is SessionState.CLOSED


async def test_someone_elses_session_is_not_on_their_dashboard(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    mallory = member("mallory", "Mallory")
    eve = browsers()
    await sign_in(rig, eve, who=mallory)
    home = await eve.get("/dash")
    assert f"/dash/s/{session_id}" not in home
    assert url not in home
    await eve.get(f"/dash/s/{session_id}", status=404)
    await eve.post(f"/dash/s/{session_id}/act", {"action": "cancel"}, status=404)
    session = await rig.store.get_session(session_id)
    assert session is not None
    assert session.state is SessionState.RUNNING


@pytest.mark.parametrize("rig", ["sqlite", "postgres"], indirect=True)
async def test_a_plan_made_on_the_web_can_be_started_in_chat(rig: WebRig, browsers: Browsers) -> None:
    olga = browsers()
    await sign_in(rig, olga)
    await olga.get("/dash/plans/new")
    fields = {
        "name": "webday",
        "title": "A day made on the web",
        "intro": "Hello",
        "recap_at": "+2h",
        "prompts": "+0s What did you learn?\n+1h What next?",
    }
    _, page = await olga.post("/dash/plans", fields, status=200)
    assert "webday" in page
    configured = await olga.get("/dash/plans/day")
    assert "read-only" in (await olga.get("/dash"))
    assert "readonly" in configured
    text = await rig.command("start", "webday")
    assert "A day made on the web" in text
    bad = {**fields, "name": "broken", "prompts": "soon What?"}
    status, problem = await olga.post("/dash/plans", bad)
    assert status == 400
    assert "neither" in problem


@pytest.mark.parametrize("rig", ["sqlite", "postgres"], indirect=True)
async def test_the_published_article_is_the_public_page_the_feed_and_the_export(
    rig: WebRig, browsers: Browsers
) -> None:
    session_id, url = await rig.start_session()
    ann = browsers()
    page = await ann.get(url)
    from tests.web.test_page import thread_of

    await ann.post(
        url + "/answer",
        {"thread": thread_of(page), "name": "Ann", "text": "Pairing helps", "consent": "yes"},
        status=200,
    )
    await rig.command("stop")
    session = await rig.store.get_session(session_id)
    assert session is not None
    generated = io.StringIO()
    await export(rig.store, session, "md", generated)
    assert "Pairing helps" in generated.getvalue()  # the web answer is in the article

    olga = browsers()
    await sign_in(rig, olga)
    editor = await olga.get(f"/dash/s/{session_id}/article")
    assert "Pairing helps" in editor  # the generated draft
    await browsers().get(f"/articles/{session_id}", status=404)
    text = "# Our day\n\nWe learnt that **pairing** helps.\n\n<script>alert(1)</script>\n"
    _, preview = await olga.post(f"/dash/s/{session_id}/article", {"action": "preview", "markdown": text}, status=200)
    assert "<strong>pairing</strong>" in preview
    assert "<script>alert(1)</script>" not in preview
    await olga.post(f"/dash/s/{session_id}/article", {"action": "save", "markdown": text}, status=200)
    await browsers().get(f"/articles/{session_id}", status=404)  # saved, not published
    _, done = await olga.post(f"/dash/s/{session_id}/article", {"action": "publish", "markdown": text}, status=200)
    assert "published" in done

    public = await browsers().get(f"/articles/{session_id}")
    assert "<h1>Our day</h1>" in public
    assert "<script>alert" not in public
    assert 'type="application/atom+xml"' in public
    feed = await browsers().get("/feed.xml")
    assert '<feed xmlns="http://www.w3.org/2005/Atom">' in feed
    assert f"/articles/{session_id}</id>" in feed
    assert "&lt;strong&gt;pairing&lt;/strong&gt;" in feed
    assert await published_export(rig.store, session, "md") == text
    html = await published_export(rig.store, session, "html")
    assert html is not None
    assert "<h1>Our day</h1>" in html
    assert "<style>" in html
    assert len(await rig.store.article_versions(session_id)) == 2


async def test_the_dashboard_needs_a_sign_in(rig: WebRig, browsers: Browsers) -> None:
    session_id, _ = await rig.start_session()
    stranger = browsers()
    await stranger.get("/dash", status=403)
    await stranger.get(f"/dash/s/{session_id}", status=403)
    await stranger.get(f"/dash/s/{session_id}/article", status=403)


async def test_attaching_the_page_again_posts_nothing_twice(rig: WebRig) -> None:
    session_id, _ = await rig.start_session()
    await rig.engine.attach_channel(session_id, rig.web.channel_for(session_id))  # a second time: no-op
    session = await rig.store.get_session(session_id)
    assert session is not None
    assert [c.platform for c in session.channels] == ["fake", "web"]
    posts = await rig.store.web_posts(f"s{session_id}")
    assert [p.thread_id is not None for p in posts] == [False, True]  # opening and prompt 1, once each


async def test_the_page_is_a_named_channel_of_the_session_in_status(rig: WebRig) -> None:
    session_id, _ = await rig.start_session()
    [home, page] = await rig.store.session_channels(session_id)
    assert home.channel == rig.channel
    assert (page.channel, page.name, page.joined_by) == (rig.web.channel_for(session_id), "the session's page", None)
    status = await rig.command("status")
    assert "the session's page on the web" in status


async def test_a_channel_in_another_running_session_is_refused(rig: WebRig) -> None:
    first, _ = await rig.start_session()
    elsewhere = ChannelRef(platform="fake", channel_id="C2")
    await rig.engine.on_command(CommandInvoked(channel=elsewhere, member=ORGANISER, name="start", at=utc_now()))
    [second] = [s.id for s in await rig.store.list_sessions() if s.id != first]
    with pytest.raises(ChannelBusy, match=f"already in session #{first}"):
        await rig.engine.attach_channel(second, rig.channel)
    session = await rig.store.get_session(second)
    assert session is not None
    assert rig.channel not in session.channels


async def test_a_session_begun_before_the_web_was_on_gets_its_page_on_resume(tmp_path: Path) -> None:
    plans = [offset_plan("day", prompts=("+0s", "+1h"), recap="+2h")]
    plain = await make_rig(tmp_path / "popup.db", plans)
    try:
        await plain.command("start")
        [session] = await plain.store.list_sessions()

        async def first_prompt_out() -> bool:
            return (await plain.store.prompts(session.id))[0].state is PromptState.POSTED

        await eventually(first_prompt_out, what="the first prompt in the chat")
    finally:
        await plain.close()
    rig = await open_web_rig(tmp_path, plans)
    try:
        await rig.prompt_on_page(session.id, 1)  # caught up: the opening, then the prompt already out
        posts = await rig.store.web_posts(f"s{session.id}")
        assert [p.thread_id is not None for p in posts] == [False, True]
        resumed = await rig.store.get_session(session.id)
        assert resumed is not None
        assert [c.platform for c in resumed.channels] == ["fake", "web"]
        assert rig.chat.posts == []  # the chat had both already: nothing posted there twice
    finally:
        await rig.engine.stop()
        await rig.web.stop()
        await rig.store.close()
