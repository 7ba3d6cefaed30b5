"""The ChatPort side against the fake Web API: tagged posts, threads, splitting, files, 429s, pacing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest

from adapters.slack.adapter import SlackAdapter
from adapters.slack.pacing import ChannelPacer
from sessions.errors import DeliveryError
from sessions.model import Attachment, ChannelRef, Message, Quote, Section
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import FakeSlack
from tests.slack.conftest import http_settings

pytestmark = pytest.mark.e2e

C1 = ChannelRef(platform="slack", channel_id="C1")


async def test_post_is_tagged_and_found_again(http_adapter: SlackAdapter, fake: FakeSlack) -> None:
    posted = await http_adapter.post(C1, Message(title="Hello", body="<!here> world"), key="popup:1:opening")
    assert posted.thread is None
    [call] = fake.calls_to("chat.postMessage")
    assert call.args["metadata"] == {
        "event_type": "popup_post",
        "event_payload": {"key": "popup:1:opening", "part": 0, "parts": 1},
    }
    assert call.args["unfurl_links"] is False
    assert "<!here>" not in call.args["text"]
    assert "&lt;!here&gt;" in call.args["blocks"][1]["text"]["text"]
    found = await http_adapter.find_post(C1, "popup:1:opening")
    assert found == posted
    assert await http_adapter.find_post(C1, "popup:1:other") is None
    history = fake.calls_to("conversations.history")[-1]
    assert history.args["include_all_metadata"] in ("1", "true", True)


async def test_open_thread_returns_a_thread_ref_and_find_post_knows_it(
    http_adapter: SlackAdapter, fake: FakeSlack
) -> None:
    posted = await http_adapter.open_thread(C1, Message(body="Prompt 1"), key="popup:1:prompt:1")
    assert posted.thread is not None
    assert posted.thread.thread_id == f"C1:{posted.message.message_id}"
    assert posted.thread.channel == C1
    assert await http_adapter.find_post(C1, "popup:1:prompt:1") == posted


async def test_find_post_ignores_other_authors_posts_with_the_same_key(
    http_adapter: SlackAdapter, fake: FakeSlack
) -> None:
    fake.messages["C1"] = [
        {
            "type": "message",
            "ts": "1600000000.000100",
            "user": "UOTHER",
            "text": "copycat",
            "metadata": {"event_type": "popup_post", "event_payload": {"key": "k", "part": 0}},
        }
    ]
    assert await http_adapter.find_post(C1, "k") is None


async def test_find_post_follows_the_history_cursor_to_an_older_page(
    http_adapter: SlackAdapter, fake: FakeSlack
) -> None:
    posted = await http_adapter.post(C1, Message(title="Opening"), key="popup:1:opening")
    for i in range(3):
        await http_adapter.post(C1, Message(title=f"Later {i}"), key=f"popup:1:later:{i}")
    fake.page_limit = 2  # newest first: the opening is on the second page
    assert await http_adapter.find_post(C1, "popup:1:opening") == posted
    pages = fake.calls_to("conversations.history")
    assert [bool(c.args.get("cursor")) for c in pages] == [False, True]


async def test_long_content_is_split_and_the_first_message_is_returned(
    http_adapter: SlackAdapter, fake: FakeSlack
) -> None:
    quotes = tuple(Quote(text="x" * 900 + f" #{i}", author=f"m{i}") for i in range(40))
    posted = await http_adapter.post(C1, Message(title="Recap", sections=(Section(quotes=quotes),)), key="recap")
    calls = fake.calls_to("chat.postMessage")
    assert len(calls) >= 3
    assert posted.message.message_id == fake.posts("C1")[0]["ts"]
    assert [c.args["metadata"]["event_payload"]["part"] for c in calls] == list(range(len(calls)))
    for call in calls:
        assert len(call.args["blocks"]) <= 50
        assert sum(len(b["text"]["text"]) for b in call.args["blocks"] if "text" in b) <= 12_000
    assert await http_adapter.find_post(C1, "recap") == posted


@pytest.mark.parametrize("thread", [False, True])
async def test_a_post_cut_short_is_completed_never_duplicated(fake: FakeSlack, thread: bool) -> None:
    """Part 2 of 3 reaches Slack but its answer is lost: the attempt fails, find_post sees the gap
    (part 3 missing), and the next post sends only part 3, then the files."""
    fake.drop_posts = {2}
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(RecordingHandler())
    long = Message(
        body="word " * 5000,
        attachments=(Attachment(filename="a.md", content_type="text/markdown", data=b"# a"),),
    )
    send = adapter.open_thread if thread else adapter.post
    try:
        with pytest.raises(DeliveryError, match="part 2 of"):
            await send(C1, long, key="recap")
        assert not fake.uploads
        assert await adapter.find_post(C1, "recap") is None  # incomplete: not reported as posted
        posted = await send(C1, long, key="recap")
        assert await adapter.find_post(C1, "recap") == posted  # complete now
    finally:
        await adapter.stop()
    parts = [m["metadata"]["event_payload"]["part"] for m in fake.posts("C1")]
    assert sorted(parts) == list(range(len(parts)))  # every part exactly once
    assert len(parts) >= 3
    assert posted.message.message_id == fake.posts("C1")[0]["ts"]
    assert [u.filename for u in fake.uploads.values()] == ["a.md"]
    if thread:
        assert all(m.get("thread_ts") == posted.message.message_id for m in fake.posts("C1")[1:])


async def test_a_long_prompt_continues_inside_its_own_thread(http_adapter: SlackAdapter, fake: FakeSlack) -> None:
    posted = await http_adapter.open_thread(C1, Message(body="word " * 5000), key="p")
    calls = fake.calls_to("chat.postMessage")
    assert len(calls) >= 2
    assert "thread_ts" not in calls[0].args
    assert all(c.args["thread_ts"] == posted.message.message_id for c in calls[1:])


async def test_attachments_are_uploaded_with_files_upload_v2(http_adapter: SlackAdapter, fake: FakeSlack) -> None:
    article = Attachment(filename="article.md", content_type="text/markdown", data=b"# The day\n\nwords")
    chart = Attachment(filename="chart.png", content_type="image/png", data=b"\x89PNG\r\n\x1a\n...")
    await http_adapter.post(C1, Message(title="Recap", attachments=(article, chart)), key="recap")
    assert len(fake.calls_to("files.getUploadURLExternal")) == 2
    assert len(fake.calls_to("files.completeUploadExternal")) == 2
    uploads = sorted(fake.uploads.values(), key=lambda u: u.file_id)
    assert [(u.filename, u.data, u.channel, u.completed) for u in uploads] == [
        ("article.md", article.data, "C1", True),
        ("chart.png", chart.data, "C1", True),
    ]


async def test_429_with_retry_after_is_retried_and_posts_exactly_once(fake: FakeSlack) -> None:
    fake.rate_limit_posts = {1}
    fake.retry_after = 0
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(RecordingHandler())
    try:
        posted = await adapter.open_thread(C1, Message(body="Prompt"), key="prompt:1")
    finally:
        await adapter.stop()
    assert len(fake.calls_to("chat.postMessage")) == 2  # the 429, then the post
    assert len(fake.posts("C1")) == 1
    assert posted.message.message_id == fake.posts("C1")[0]["ts"]


async def test_a_dropped_connection_is_not_retried_blindly(fake: FakeSlack) -> None:
    """The post reached Slack but the answer was lost: DeliveryError, and find_post finds it."""
    fake.drop_posts = {1}
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(RecordingHandler())
    try:
        with pytest.raises(DeliveryError, match=r"chat\.postMessage"):
            await adapter.open_thread(C1, Message(body="Prompt"), key="prompt:1")
        assert len(fake.calls_to("chat.postMessage")) == 1  # no connection-error retry
        found = await adapter.find_post(C1, "prompt:1")
    finally:
        await adapter.stop()
    assert found is not None
    assert found.thread is not None
    assert found.message.message_id == fake.posts("C1")[0]["ts"]


async def test_an_api_error_is_a_delivery_error(http_adapter: SlackAdapter) -> None:
    with pytest.raises(DeliveryError, match="channel_not_found"):
        await http_adapter.post(ChannelRef(platform="slack", channel_id=""), Message(body="x"), key="k")


async def test_posts_are_paced_per_channel(fake: FakeSlack) -> None:
    adapter = SlackAdapter(http_settings(fake), post_interval=0.3)
    await adapter.start(RecordingHandler())
    try:
        started = time.monotonic()
        for i in range(3):
            await adapter.post(C1, Message(body=f"m{i}"), key=f"k{i}")
        paced = time.monotonic() - started
    finally:
        await adapter.stop()
    assert paced >= 0.6


async def test_a_channel_waiting_for_its_pace_does_not_hold_up_another(fake: FakeSlack) -> None:
    adapter = SlackAdapter(http_settings(fake), post_interval=600)
    await adapter.start(RecordingHandler())
    try:
        await adapter.post(C1, Message(body="m0"), key="k0")
        paced = asyncio.create_task(adapter.post(C1, Message(body="m1"), key="k1"))  # ten minutes off
        await adapter.post(ChannelRef(platform="slack", channel_id="C2"), Message(body="x"), key="k")
        assert not paced.done()
        assert [m["text"] for m in fake.posts()] == ["m0", "x"]
        paced.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await paced
    finally:
        await adapter.stop()


async def test_pacer_spaces_concurrent_posts() -> None:
    pacer = ChannelPacer(0.1)
    stamps: list[float] = []

    async def one() -> None:
        async with pacer.slot("C1"):
            stamps.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(4)))
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.09 for gap in gaps)
