"""The participant page over real HTTP: reading, answering, editing, and the live stream."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from sessions.records import SessionState
from tests.support import eventually
from tests.web.conftest import Browsers, WebRig


def thread_of(page: str) -> str:
    found = re.search(r'name="thread" value="([^"]+)"', page)
    assert found, page[:2000]
    return found[1]


async def replies(rig: WebRig, session_id: int) -> list[tuple[str, str, str]]:
    found = []
    async for reply in rig.store.iter_replies(session_id):
        found.append((reply.platform, reply.author_name, reply.text))
    return found


async def test_start_answers_with_the_page_showing_the_opening_and_prompt(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    assert url.startswith(rig.base + "/s/")
    status = await rig.command("status")
    assert url in status
    page = await browsers().get(url)
    assert "Popup learning session: Plan day" in page
    assert "Prompt 1 of day?" in page
    assert "Prompt 2 of day?" in page  # in the timetable of the opening
    assert 'rel="alternate" type="application/atom+xml"' in page
    session = await rig.store.get_session(session_id)
    assert session is not None
    assert session.state is SessionState.RUNNING
    assert [c.platform for c in session.channels] == ["fake", "web"]


@pytest.mark.parametrize("rig", ["sqlite", "postgres"], indirect=True)
async def test_an_answer_is_stored_as_a_web_reply_and_shown(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    ann = browsers()
    page = await ann.get(url)
    await ann.post(
        url + "/answer", {"thread": thread_of(page), "name": "Ann", "text": "Pairing!", "consent": "yes"}, status=200
    )
    assert await replies(rig, session_id) == [("web", "Ann", "Pairing!")]
    assert "Pairing!" in await browsers().get(url)


async def test_a_wrong_token_is_not_found(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    await browsers().get(f"/s/{session_id}.AAAAAAAAAAAAAAAAAAAAAA", status=404)
    await browsers().get(f"/s/{session_id + 1}.{url.rsplit('.', 1)[1]}", status=404)


async def test_the_live_stream_brings_another_browsers_answer(rig: WebRig, browsers: Browsers) -> None:
    _, url = await rig.start_session()
    ann, bob = browsers(), browsers()
    page = await ann.get(url)
    await bob.get(url)
    frames: list[tuple[str, dict[str, str]]] = []

    async def listen() -> None:
        async with bob.http.get(url + "/live") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    frames.append((event, json.loads(line[6:])))

    listener = asyncio.create_task(listen())
    channel_id = f"s{url.split('/s/')[1].split('.')[0]}"
    await eventually(lambda: rig.web.ctx.hub.listeners(channel_id) == 1, what="the page to listen")
    await ann.post(
        url + "/answer", {"thread": thread_of(page), "name": "Ann <b>", "text": "Hi <script>", "consent": "yes"}
    )
    await eventually(lambda: any(kind == "reply" for kind, _ in frames), what="the reply on the live page")
    listener.cancel()
    _kind, data = next(f for f in frames if f[0] == "reply")
    assert "Hi &lt;script&gt;" in data["html"]
    assert "Ann &lt;b&gt;" in data["html"]
    assert "<script>" not in data["html"]


async def test_a_browser_edits_and_deletes_its_own_answer_and_no_one_elses(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    ann, eve = browsers(), browsers()
    page = await ann.get(url)
    _, answered = await ann.post(
        url + "/answer", {"thread": thread_of(page), "name": "Ann", "text": "First", "consent": "yes"}, json=True
    )
    message = json.loads(answered)["id"].removeprefix("r-")
    await eve.get(url)
    await eve.post(url + "/edit", {"message": message, "text": "Hijacked"}, status=403)
    await eve.post(url + "/delete", {"message": message}, status=403)
    await ann.post(url + "/edit", {"message": message, "text": "Second"}, status=200)
    assert await replies(rig, session_id) == [("web", "Ann", "Second")]
    await ann.post(url + "/delete", {"message": message}, status=200)
    assert await replies(rig, session_id) == []


async def test_answers_close_with_the_session(rig: WebRig, browsers: Browsers) -> None:
    session_id, url = await rig.start_session()
    ann = browsers()
    page = await ann.get(url)
    await rig.command("stop")
    await ann.post(
        url + "/answer", {"thread": thread_of(page), "name": "Ann", "text": "Late", "consent": "yes"}, status=409
    )
    assert await replies(rig, session_id) == []
    closed = await ann.get(url)
    assert "answers are closed" in closed
    assert 'class="answer"' not in closed


async def test_the_qr_code_comes_as_svg_and_png(rig: WebRig) -> None:
    _, url = await rig.start_session()
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/qr.svg") as response:
            assert response.content_type == "image/svg+xml"
            assert b"<svg" in await response.read()
        async with http.get(url + "/qr.png") as response:
            assert response.content_type == "image/png"
            assert (await response.read()).startswith(b"\x89PNG")
