"""The web side on the open internet: CSRF, size and rate limits, the honeypot, escaping, headers."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from adapters.web.server import CSP
from tests.support import offset_plan
from tests.web.conftest import Browser, Browsers, WebRig, open_web_rig
from tests.web.test_page import replies, thread_of


def answer(page: str, text: str = "An answer", **extra: str) -> dict[str, str]:
    return {"thread": thread_of(page), "name": "Ann", "text": text, "consent": "yes", **extra}


async def test_a_post_without_the_csrf_token_is_refused(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    ann = browsers()
    page = await ann.get(url)
    await ann.post(url + "/answer", answer(page), csrf=False, status=403)
    await ann.post(url + "/answer", {**answer(page), "csrf": "forged"}, csrf=False, status=403)
    assert await replies(rig, session_id) == []


async def test_another_browsers_csrf_token_is_refused(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    ann, eve = browsers(), browsers()
    page = await ann.get(url)
    await eve.get(url)
    eve.csrf = ann.csrf  # a token lifted from another browser's page
    await eve.post(url + "/answer", answer(page), status=403)
    assert await replies(rig, session_id) == []


async def test_a_cookieless_post_is_refused(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    ann = browsers()
    page = await ann.get(url)
    form = {"csrf": ann.csrf, **answer(page)}
    async with aiohttp.ClientSession() as bare, bare.post(url + "/answer", data=form) as response:  # no page cookie
        assert response.status == 403
    assert await replies(rig, session_id) == []


async def test_a_request_over_the_size_limit_is_refused(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    ann = browsers()
    page = await ann.get(url)
    status, _ = await ann.post(url + "/answer", answer(page, text="x" * (rig.web.settings.max_request_bytes + 1)))
    assert status == 413
    status, _ = await ann.post(url + "/answer", answer(page, text="x" * (rig.web.settings.max_answer_chars + 1)))
    assert status == 413
    assert await replies(rig, session_id) == []


async def test_answers_are_rate_limited_per_client(tmp_path: Path) -> None:
    rig = await open_web_rig(
        tmp_path, [offset_plan("day", prompts=("+0s", "+1h"), recap="+2h")], answer_burst=3, answers_per_minute=0.01
    )
    ann = Browser(rig.base)
    try:
        session_id, url = await rig.start_session()
        page = await ann.get(url)
        codes = [(await ann.post(url + "/answer", answer(page, text=f"n{i}")))[0] for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        assert len(await replies(rig, session_id)) == 3
    finally:
        await ann.close()
        await rig.engine.stop()
        await rig.web.stop()
        await rig.store.close()


async def test_the_honeypot_takes_the_answer_and_keeps_nothing(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    bot = browsers()
    page = await bot.get(url)
    await bot.post(url + "/answer", answer(page, website="http://spam.example"), status=200)
    assert await replies(rig, session_id) == []


async def test_hostile_names_and_text_are_escaped_everywhere(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    eve = browsers()
    page = await eve.get(url)
    hostile = "<img src=x onerror=alert(1)>\"'&"
    await eve.post(url + "/answer", {**answer(page, text=hostile), "name": "<script>alert(2)</script>"}, status=200)
    assert await replies(rig, session_id) == [("web", "<script>alert(2)</script>", hostile)]
    shown = await browsers().get(url)
    assert "<img src=x" not in shown
    assert "<script>alert" not in shown
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;" in shown
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in shown


async def test_every_page_carries_a_strict_policy_and_safe_cookies(rig: WebRig) -> None:
    _, url = await rig.start_session()
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.headers["Content-Security-Policy"] == CSP
        assert "'unsafe-inline'" not in CSP
        assert "script-src 'self'" in CSP
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # http here; see the next test for https
        body = await response.text()
        assert "<script>" not in body  # no inline script: the one script is a file
        assert '<script src="/static/popup.js" defer></script>' in body


async def test_cookies_are_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    rig = await open_web_rig(tmp_path, [offset_plan("day", prompts=("+0s", "+1h"), recap="+2h")])
    rig.web.ctx.settings = rig.web.settings = rig.web.settings.__class__(
        **{
            **{f: getattr(rig.web.settings, f) for f in rig.web.settings.__dataclass_fields__},
            "public_url": "https://popup.example.org",
        }
    )
    try:
        async with aiohttp.ClientSession() as http, http.get(rig.base + "/") as response:
            assert "Secure" in response.headers["Set-Cookie"]
    finally:
        await rig.engine.stop()
        await rig.web.stop()
        await rig.store.close()


async def test_a_page_never_shows_another_sessions_url(rig: WebRig, browsers: Browsers) -> None:
    from sessions.model import ChannelRef

    _, first = await rig.start_session()
    rig.channel = ChannelRef(platform="fake", channel_id="C2")
    _, second = await rig.start_session()
    assert first != second
    page = await browsers().get(first)
    assert second.rsplit("/", 1)[1] not in page
    assert "/s/" not in (await browsers().get("/"))
