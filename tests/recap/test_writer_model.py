"""The optional writer model, over HTTP against a fake OpenAI-compatible server on loopback.

The fake is an aiohttp server on 127.0.0.1 (port 0) that answers ``POST /v1/chat/completions``
the way llama.cpp's and Ollama's servers do; what its "model" writes is up to each test: an honest
rewrite, or one of several lies. The real client (bot/prose_model.py) and the real recap run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bot.prose_model import OpenAIChatModel
from sessions.recap import build_recap
from storage.sqlite import SqliteStore
from tests.recap.conftest import sample_day

KEY = "sk-test-never-logged-4711"
Writer = Callable[[dict[str, Any]], str]  # the request's draft -> the model's answer


@dataclass
class FakeModelServer:
    writer: Writer | None = None
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization", ""))
        if self.status != 200:
            return web.json_response({"error": {"message": "overloaded"}}, status=self.status)
        user = json.loads(body["messages"][1]["content"])
        assert self.writer is not None
        content = self.writer(user["draft"])
        return web.json_response({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


@pytest.fixture
async def fake_model() -> AsyncIterator[tuple[FakeModelServer, str]]:
    server = FakeModelServer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def _rewrite_text(draft: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    return {
        "sections": [
            {
                "heading": s["heading"],
                "paragraphs": [[change(x) if isinstance(x, str) else x for x in p] for p in s["paragraphs"]],
            }
            for s in draft["sections"]
        ]
    }


def honest(draft: dict[str, Any]) -> str:
    rewritten = _rewrite_text(
        draft, lambda t: t.replace("Under ", "Beneath ").replace("It began under", "It opened beneath")
    )
    return "Here is the article:\n```json\n" + json.dumps(rewritten) + "\n```"


def invents_a_quote(draft: dict[str, Any]) -> str:
    first = draft["sections"][1]["paragraphs"][0]
    first.append({"quote": "Nobody here ever learns anything", "by": "Person 2"})
    return json.dumps(draft)


def misattributes(draft: dict[str, Any]) -> str:
    for section in draft["sections"]:
        for paragraph in section["paragraphs"]:
            for segment in paragraph:
                if isinstance(segment, dict) and segment["by"] != "Person 5":
                    segment["by"] = "Person 5"
                    return json.dumps(draft)
    raise AssertionError("no quote to misattribute")


def invents_a_number(draft: dict[str, Any]) -> str:
    draft["sections"][0]["paragraphs"].append(["Attendance was up 37 per cent on last year."])
    return json.dumps(draft)


def not_json(draft: dict[str, Any]) -> str:
    return "I am sorry, I cannot help with that."


async def _recap_md(store: SqliteStore, base_url: str) -> str:
    session = await store.get_session(1)
    if session is None:
        session = await (await sample_day(store)).fresh()
    model = OpenAIChatModel(base_url=base_url, model="fake-writer", api_key=KEY)
    recap = await build_recap(store, session, model=model)
    return recap.attachments[0].data.decode()


async def test_an_honest_rewrite_is_published(store: SqliteStore, fake_model, caplog) -> None:  # type: ignore[no-untyped-def]
    server, url = fake_model
    server.writer = honest
    with caplog.at_level(logging.INFO):
        md = await _recap_md(store, url)
    assert "Beneath the" in md or "It opened beneath" in md
    assert "rewritten by the writer model fake-writer" in md
    assert server.auth == [f"Bearer {KEY}"]
    assert server.requests[0]["model"] == "fake-writer"
    assert "passed the grounding check" in caplog.text
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("writer", "reason"),
    [
        (invents_a_quote, "a quote that nobody said"),
        (misattributes, "attributed to someone who did not say it"),
        (invents_a_number, "a number that was not computed: 37"),
        (not_json, "holds no JSON object"),
    ],
    ids=["invented quote", "wrong person", "invented number", "not a draft"],
)
async def test_a_lying_model_is_thrown_away_for_the_offline_draft(  # type: ignore[no-untyped-def]
    store: SqliteStore, fake_model, caplog, writer: Writer, reason: str
) -> None:
    server, url = fake_model
    server.writer = writer
    with caplog.at_level(logging.INFO):
        md = await _recap_md(store, url)
    assert len(server.requests) == 1
    assert "using the offline draft" in caplog.text
    assert reason in caplog.text
    assert "Nobody here ever learns anything" not in md
    assert "37 per cent" not in md
    assert "rewritten by the writer model" not in md
    assert "## How the day went" in md  # the offline story stands
    assert KEY not in caplog.text


async def test_an_unreachable_or_failing_model_leaves_the_offline_draft(store: SqliteStore, fake_model, caplog) -> None:  # type: ignore[no-untyped-def]
    server, url = fake_model
    server.status = 500
    with caplog.at_level(logging.INFO):
        md = await _recap_md(store, url)
    assert "HTTP 500" in caplog.text
    assert "## How the day went" in md
    closed = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    caplog.clear()
    with caplog.at_level(logging.INFO):
        md = await _recap_md(store, closed)
    assert "could not be used" in caplog.text
    assert "## How the day went" in md
