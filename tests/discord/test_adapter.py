"""The adapter on a real discord.Client against the fake gateway and REST API, with a recording
handler standing in for the engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.adapter import INTENT_REFUSED, TOKEN_REFUSED, DiscordAdapter
from sessions.errors import ConfigError, StorageError
from sessions.model import (
    ChannelRef,
    CommandReply,
    Message,
    MessageEvent,
    Quote,
    ReactionChanged,
    ReplyDeleted,
    ReplyEdited,
    ReplyPosted,
    Section,
    ThreadRef,
)
from tests.discord.conftest import make_adapter, settings_for
from tests.fakes.discord_server import EPHEMERAL, FakeDiscord
from tests.fakes.recording_handler import RecordingHandler
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def adapter(fake: FakeDiscord, handler: RecordingHandler) -> AsyncIterator[DiscordAdapter]:
    adapter = make_adapter(fake)
    await adapter.start(handler)
    yield adapter
    await adapter.stop()


def channel(fake: FakeDiscord) -> ChannelRef:
    return ChannelRef(platform="discord", channel_id=str(fake.channel_id))


def replies(handler: RecordingHandler) -> list[ReplyPosted]:
    return [e for e in handler.events if isinstance(e, ReplyPosted)]


# -- commands ---------------------------------------------------------------------------------------


async def test_popup_group_is_synced_to_the_guild_with_every_subcommand(
    fake: FakeDiscord, adapter: DiscordAdapter
) -> None:
    (popup,) = fake.commands[str(fake.guild_id)]
    assert popup["name"] == "popup"
    subcommands = {o["name"]: o for o in popup["options"]}
    assert list(subcommands) == [
        "start", "stop", "cancel", "status", "next", "plans", "forget", "join", "leave", "link", "web", "invite",
        "help",
    ]
    (join_code,) = subcommands["join"]["options"]
    assert join_code["name"] == "code"
    assert join_code["required"] is True
    (link_code,) = subcommands["link"]["options"]
    assert link_code["name"] == "code"
    assert not link_code.get("required")
    (invite_target,) = subcommands["invite"]["options"]
    assert (invite_target["name"], invite_target["type"], invite_target["required"]) == ("target", 3, True)
    (leave_target,) = subcommands["leave"]["options"]
    assert (leave_target["name"], leave_target["type"], leave_target.get("required", False)) == ("target", 3, False)
    start_options = {o["name"]: o for o in subcommands["start"]["options"]}
    assert start_options["plan"]["autocomplete"] is True
    assert start_options["plan"]["type"] == 3
    assert start_options["day"]["type"] == 3
    assert start_options["anonymous"]["type"] == 5
    assert not any(o.get("required") for o in start_options.values())
    assert "global" not in fake.commands


async def test_start_is_deferred_privately_then_answered_with_member_and_options(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    interaction = await fake.invoke(fake.olga, "start", {"plan": "retro", "day": "tomorrow", "anonymous": True})
    await eventually(lambda: len(interaction.followups) == 1, what="the answer")
    assert interaction.callbacks == [{"type": 5, "data": {"flags": EPHEMERAL}}]
    (command,) = handler.commands
    assert command.name == "start"
    assert command.args == ("retro", "tomorrow", "anonymous")
    assert command.channel == channel(fake)
    assert command.member.user_id == str(fake.olga.id)
    assert command.member.roles == (str(fake.organiser_role_id),)  # ids only, never names
    assert command.member.is_admin is False
    (answer,) = interaction.followups
    assert answer["content"] == "ok start"
    assert answer["flags"] & EPHEMERAL


async def test_invite_passes_the_typed_target_to_the_engine_as_its_one_word(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    interaction = await fake.invoke(fake.olga, "invite", {"target": " email:learning "})
    await eventually(lambda: len(interaction.followups) == 1, what="the answer")
    (command,) = handler.commands
    assert (command.name, command.args, command.channel) == ("invite", ("email:learning",), channel(fake))
    assert interaction.followups[0]["content"] == "ok invite"


@pytest.mark.parametrize(("options", "args"), [({}, ()), ({"target": " email:learning "}, ("email:learning",))])
async def test_leave_takes_this_channel_or_the_named_list(
    fake: FakeDiscord,
    adapter: DiscordAdapter,
    handler: RecordingHandler,
    options: dict[str, str],
    args: tuple[str, ...],
) -> None:
    interaction = await fake.invoke(fake.olga, "leave", options)
    await eventually(lambda: len(interaction.followups) == 1, what="the answer")
    (command,) = handler.commands
    assert (command.name, command.args, command.channel) == ("leave", args, channel(fake))


async def test_manage_server_members_are_admins_and_empty_options_are_left_out(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    interaction = await fake.invoke(fake.admin, "start")
    await eventually(lambda: len(interaction.followups) == 1)
    (command,) = handler.commands
    assert command.args == ()
    assert command.member.is_admin is True
    assert command.member.roles == ()


async def test_a_public_answer_follows_a_private_done(fake: FakeDiscord, handler: RecordingHandler) -> None:
    handler = RecordingHandler(reply=CommandReply(text="Started @everyone", ephemeral=False))
    adapter = make_adapter(fake)
    await adapter.start(handler)
    try:
        interaction = await fake.invoke(fake.olga, "next")
        await eventually(lambda: len(interaction.followups) == 2)
    finally:
        await adapter.stop()
    private, public = interaction.followups
    assert private["flags"] & EPHEMERAL
    assert private["content"] == "Done."
    assert not public["flags"] & EPHEMERAL
    assert public["content"] == "Started @\u200beveryone"
    webhook_posts = [c for c in fake.calls if c.path.startswith("/webhooks/")]
    assert all(c.body["allowed_mentions"] == {"parse": []} for c in webhook_posts)


async def test_web_asks_for_a_sign_in_link_and_the_answer_stays_private(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    handler.reply = CommandReply(text="Your sign-in link: http://127.0.0.1:8080/signin/t0ken", ephemeral=True)
    interaction = await fake.invoke(fake.olga, "web")
    await eventually(lambda: len(interaction.followups) == 1, what="the answer")
    (command,) = handler.commands
    assert (command.name, command.args) == ("web", ())
    assert command.member.user_id == str(fake.olga.id)
    (answer,) = interaction.followups
    assert answer["flags"] & EPHEMERAL
    assert answer["content"].endswith("/signin/t0ken")


async def test_plan_autocomplete_offers_matching_plans(fake: FakeDiscord, adapter: DiscordAdapter) -> None:
    interaction = await fake.autocomplete(fake.olga, "LUN")
    await eventually(lambda: len(interaction.callbacks) == 1)
    (callback,) = interaction.callbacks
    assert callback["type"] == 8
    assert callback["data"]["choices"] == [{"name": "Lunch & Learn", "value": "Lunch & Learn"}]


async def test_commands_sync_globally_without_guild_ids(fake: FakeDiscord, handler: RecordingHandler) -> None:
    adapter = make_adapter(fake, guild_ids=())
    await adapter.start(handler)
    await adapter.stop()
    assert [c["name"] for c in fake.commands["global"]] == ["popup"]
    assert any(c.method == "PUT" and c.path == f"/applications/{fake.app_id}/commands" for c in fake.calls)


# -- posting ----------------------------------------------------------------------------------------


async def test_post_sends_embeds_with_nonce_and_no_mentions(fake: FakeDiscord, adapter: DiscordAdapter) -> None:
    content = Message(title="Opening", body="Welcome @everyone", sections=(Section(quotes=(Quote(text="<@&1>"),)),))
    posted = await adapter.post(channel(fake), content, key="popup:1:1:opening")
    (message,) = fake.bot_posts()
    assert posted.message.message_id == message["id"]
    assert posted.message.channel == channel(fake)
    assert posted.thread is None
    (create,) = fake.message_creates()
    assert create.body["allowed_mentions"] == {"parse": []}
    assert create.body["enforce_nonce"] is True
    assert create.body["nonce"]
    (embed,) = message["embeds"]
    assert embed["title"] == "Opening"
    assert "@everyone" not in embed["description"]
    assert embed["footer"]["text"].startswith("Popup · ref ")


async def test_open_thread_starts_a_public_thread_from_the_prompt(fake: FakeDiscord, adapter: DiscordAdapter) -> None:
    posted = await adapter.open_thread(channel(fake), Message(title="Prompt 1", body="What helps you learn?"), key="k1")
    (message,) = fake.bot_posts()
    assert posted.thread is not None
    assert posted.thread.thread_id == message["id"]  # a thread started from a message has its id
    assert posted.thread.channel == channel(fake)
    thread = fake.threads[int(message["id"])]
    assert thread["name"] == "Prompt 1"
    assert thread["thread_metadata"]["auto_archive_duration"] == 1440


async def test_a_resend_of_the_same_post_is_deduplicated_by_its_nonce(
    fake: FakeDiscord, adapter: DiscordAdapter
) -> None:
    first = await adapter.post(channel(fake), Message(body="once"), key="k-dedupe")
    second = await adapter.post(channel(fake), Message(body="once"), key="k-dedupe")
    assert first == second
    assert len(fake.bot_posts()) == 1


@pytest.mark.parametrize("is_global", [True, False], ids=["global", "route"])
async def test_a_429_on_message_create_posts_the_prompt_exactly_once(
    fake: FakeDiscord, adapter: DiscordAdapter, is_global: bool
) -> None:
    fake.rate_limits = {1: is_global}
    posted = await adapter.open_thread(channel(fake), Message(title="Prompt 1"), key="k429")
    creates = [c for c in fake.calls if c.method == "POST" and c.path == f"/channels/{fake.channel_id}/messages"]
    assert [c.status for c in creates] == [429, 200]
    (message,) = fake.bot_posts()
    assert posted.message.message_id == message["id"]
    assert len(fake.threads) == 1


async def test_find_post_finds_an_earlier_post_and_finishes_its_thread(
    fake: FakeDiscord, adapter: DiscordAdapter
) -> None:
    key = "popup:7:1700000000:prompt:1"
    assert await adapter.find_post(channel(fake), key) is None
    fake.refuse_threads = 1  # the crash: the prompt is posted, its thread not yet created
    with pytest.raises(Exception, match="thread"):
        await adapter.open_thread(channel(fake), Message(title="Prompt 1"), key=key)
    assert fake.threads == {}
    found = await adapter.find_post(channel(fake), key)
    (message,) = fake.bot_posts()
    assert found is not None
    assert found.message.message_id == message["id"]
    assert found.thread is not None
    assert found.thread.thread_id == message["id"]
    assert list(fake.threads) == [int(message["id"])]
    again = await adapter.find_post(channel(fake), key)
    assert again == found
    assert len(fake.threads) == 1


async def test_find_post_needs_every_part_of_a_split_post(fake: FakeDiscord, adapter: DiscordAdapter) -> None:
    long = Message(body="\n".join("z" * 1000 for _ in range(12)))
    key = "popup:8:1700000000:recap"
    posted = await adapter.post(channel(fake), long, key=key)
    parts = fake.bot_posts()
    assert len(parts) > 1
    assert posted.message.message_id == parts[0]["id"]
    found = await adapter.find_post(channel(fake), key)
    assert found == posted
    fake.messages[fake.channel_id].remove(parts[-1])
    assert await adapter.find_post(channel(fake), key) is None


async def test_attachments_are_uploaded_as_files(fake: FakeDiscord, adapter: DiscordAdapter) -> None:
    from sessions.model import Attachment

    content = Message(
        title="Recap", attachments=(Attachment(filename="day.md", content_type="text/markdown", data=b"# Day"),)
    )
    await adapter.post(channel(fake), content, key="k-files")
    (message,) = fake.bot_posts()
    assert [a["filename"] for a in message["attachments"]] == ["day.md"]
    assert fake.uploads[message["id"]][0]["data"] == b"# Day"


# -- collecting -------------------------------------------------------------------------------------


async def test_replies_edits_deletions_and_reactions_are_forwarded(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    posted = await adapter.open_thread(channel(fake), Message(title="Prompt 1"), key="k-collect")
    assert posted.thread is not None
    thread_id = int(posted.thread.thread_id)
    await fake.say(fake.channel_id, fake.max, "not in a thread")
    reply = await fake.say(thread_id, fake.max, "I learn by doing")
    await fake.edit(thread_id, reply["id"], "I learn by doing, and by asking")
    await fake.react(thread_id, reply["id"], fake.olga, "👍")
    await fake.react(thread_id, reply["id"], fake.olga, "👍", add=False)
    await fake.delete(thread_id, reply["id"])
    await eventually(lambda: any(isinstance(e, ReplyDeleted) for e in handler.events))
    kinds = [type(e) for e in handler.events]
    assert kinds == [ReplyPosted, ReplyEdited, ReactionChanged, ReactionChanged, ReplyDeleted]
    posted_event, edited, added, removed, deleted = handler.events
    assert isinstance(posted_event, ReplyPosted)
    assert posted_event.thread == posted.thread
    assert posted_event.message.channel.channel_id == str(thread_id)
    assert posted_event.author.display_name == "Max"
    assert isinstance(edited, ReplyEdited)
    assert edited.text == "I learn by doing, and by asking"
    assert edited.thread == posted.thread
    assert isinstance(added, ReactionChanged)
    assert added.added
    assert added.emoji == "👍"
    assert added.user_id == str(fake.olga.id)
    assert isinstance(removed, ReactionChanged)
    assert not removed.added
    assert deleted.message == posted_event.message


async def test_a_reply_in_a_thread_the_client_never_saw_is_forwarded(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    thread_id = fake.snowflake()
    fake.threads[thread_id] = fake.thread_payload(thread_id, fake.channel_id, "old prompt")  # no THREAD_CREATE
    fake.messages[thread_id] = []
    assert adapter.client is not None
    assert adapter.client.get_channel(thread_id) is None
    await fake.say(thread_id, fake.max, "late but here")
    await eventually(lambda: bool(replies(handler)))
    (event,) = replies(handler)
    assert event.thread.thread_id == str(thread_id)
    assert event.message.channel.channel_id == str(thread_id)
    assert event.text == "late but here"


async def test_a_dropped_connection_resumes_and_loses_no_reply(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    posted = await adapter.open_thread(channel(fake), Message(title="Prompt 1"), key="k-resume")
    assert posted.thread is not None
    thread_id = int(posted.thread.thread_id)
    await fake.say(thread_id, fake.max, "before the drop")
    await eventually(lambda: len(replies(handler)) == 1)
    await fake.drop_connection()
    await fake.say(thread_id, fake.olga, "while the bot was reconnecting")
    await eventually(lambda: len(replies(handler)) == 2)
    assert [e.text for e in replies(handler)] == ["before the drop", "while the bot was reconnecting"]
    assert (fake.identifies, fake.resumes) == (1, 1)


async def test_backfill_forwards_replies_posted_while_offline(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    posted = await adapter.open_thread(channel(fake), Message(title="Prompt 1"), key="k-backfill")
    assert posted.thread is not None
    thread_id = int(posted.thread.thread_id)
    first = fake.say_offline(thread_id, fake.max, "first while away")
    fake.say_offline(thread_id, fake.olga, "second while away")
    first["content"], first["edited_timestamp"] = "first, edited", "2030-01-01T00:00:00+00:00"
    await adapter.backfill([posted.thread])
    assert [e.text for e in replies(handler)] == ["first, edited", "second while away"]
    edits = [e for e in handler.events if isinstance(e, ReplyEdited)]
    assert [(e.text, e.at.year) for e in edits] == [("first, edited", 2030)]
    assert all(e.thread == posted.thread for e in replies(handler))


async def test_backfill_reads_a_thread_that_is_not_in_the_cache(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler
) -> None:
    thread_id = fake.snowflake()
    fake.threads[thread_id] = fake.thread_payload(thread_id, fake.channel_id, "archived prompt")
    fake.messages[thread_id] = []
    fake.say_offline(thread_id, fake.max, "answer in an archived thread")
    thread = ThreadRef(channel=channel(fake), thread_id=str(thread_id))
    await adapter.backfill([thread, ThreadRef(channel=channel(fake), thread_id="404")])  # 404: logged, skipped
    assert [e.text for e in replies(handler)] == ["answer in an archived thread"]
    assert any(c.method == "GET" and c.path == f"/channels/{thread_id}" for c in fake.calls)


async def test_a_new_gateway_session_backfills_known_threads(
    fake: FakeDiscord, adapter: DiscordAdapter, handler: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert adapter.client is not None
    # discord.py waits 5 s before a re-IDENTIFY (the identify rate limit); not needed here.
    monkeypatch.setattr(adapter.client, "before_identify_hook", _no_wait)
    posted = await adapter.open_thread(channel(fake), Message(title="Prompt 1"), key="k-reidentify")
    assert posted.thread is not None
    await fake.drop_connection()
    fake.sessions.clear()  # Discord forgot the session: RESUME fails, the client identifies anew
    fake.say_offline(int(posted.thread.thread_id), fake.max, "said between sessions")
    await eventually(lambda: len(replies(handler)) == 1)
    assert replies(handler)[0].text == "said between sessions"
    assert fake.identifies == 2


async def _no_wait(shard_id: int | None, *, initial: bool = False) -> None:
    return None


# -- start-up and configuration -----------------------------------------------------------------------


async def test_a_refused_message_content_intent_is_a_config_error(fake: FakeDiscord, handler: RecordingHandler) -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    fake.refuse_intents = True
    adapter = make_adapter(fake)
    with pytest.raises(ConfigError) as caught:
        await adapter.start(handler)
    assert str(caught.value) == INTENT_REFUSED
    assert "\n" not in str(caught.value)
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    await adapter.stop()  # idempotent after a failed start


async def test_a_refused_token_is_a_config_error(fake: FakeDiscord, handler: RecordingHandler) -> None:
    adapter = DiscordAdapter(replace(settings_for(fake), token="not-the-token"), guild_ready_timeout=0.05)
    with pytest.raises(ConfigError, match="DISCORD_TOKEN") as caught:
        await adapter.start(handler)
    assert str(caught.value) == TOKEN_REFUSED


async def test_endpoints_apply_while_running_and_are_restored_on_stop(
    fake: FakeDiscord, handler: RecordingHandler
) -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    adapter = make_adapter(fake)
    await adapter.start(handler)
    assert fake.api_base_url == Route.BASE
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    await adapter.stop()
    await adapter.stop()
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)


async def test_the_gateway_is_spoken_to_as_discord_expects(fake: FakeDiscord, adapter: DiscordAdapter) -> None:
    assert adapter.platform == "discord"
    assert fake.identified_with is not None
    intents = fake.identified_with["intents"]
    guilds, guild_messages, guild_reactions, message_content = 1 << 0, 1 << 9, 1 << 10, 1 << 15
    assert intents == guilds | guild_messages | guild_reactions | message_content
    assert fake.connect_queries[0]["compress"] == "zlib-stream"


async def test_stop_lets_the_engine_finish_an_event_already_handed_to_it(fake: FakeDiscord) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    class SlowHandler(RecordingHandler):
        async def on_event(self, event: MessageEvent) -> None:
            started.set()
            await asyncio.sleep(0.2)
            await super().on_event(event)
            finished.set()

    handler = SlowHandler()
    adapter = make_adapter(fake)
    await adapter.start(handler)
    thread_id = fake.snowflake()
    fake.threads[thread_id] = fake.thread_payload(thread_id, fake.channel_id, "prompt")
    fake.messages[thread_id] = []
    await fake.say(thread_id, fake.max, "just in time")
    await asyncio.wait_for(started.wait(), 5)
    await adapter.stop()
    assert finished.is_set()
    assert [e.text for e in replies(handler)] == ["just in time"]


async def test_heartbeats_are_acknowledged_and_keep_the_session(handler: RecordingHandler) -> None:
    fake = FakeDiscord(heartbeat_interval_ms=40)
    await fake.start()
    adapter = make_adapter(fake)
    try:
        await adapter.start(handler)
        await eventually(lambda: fake.heartbeats >= 5, what="a few heartbeats")
        assert (fake.identifies, fake.resumes) == (1, 0)
        assert fake.connected
    finally:
        await adapter.stop()
        await fake.close()


async def test_resumes_stay_on_the_configured_gateway(
    fake: FakeDiscord, handler: RecordingHandler, unused_tcp_port: int
) -> None:
    # Behind a gateway proxy, READY's resume URL names a host we cannot reach.
    fake.resume_gateway_url = f"ws://127.0.0.1:{unused_tcp_port}/unreachable"
    adapter = make_adapter(fake)
    await adapter.start(handler)
    try:
        thread_id = fake.snowflake()
        fake.threads[thread_id] = fake.thread_payload(thread_id, fake.channel_id, "prompt")
        fake.messages[thread_id] = []
        await fake.drop_connection()
        await fake.say(thread_id, fake.max, "after the drop")
        await eventually(lambda: len(replies(handler)) == 1)
        assert (fake.identifies, fake.resumes) == (1, 1)
    finally:
        await adapter.stop()


# -- a failed store -------------------------------------------------------------------------------------


class FailingHandler(RecordingHandler):
    """Fails the first ``fail_events`` calls to ``on_event`` (all of them while ``broken``), as a
    database that cannot write would; counts every attempt."""

    def __init__(self, fail_events: int = 0, *, broken: bool = False) -> None:
        super().__init__()
        self.fail_events = fail_events
        self.broken = broken
        self.attempts: list[MessageEvent] = []

    async def on_event(self, event: MessageEvent) -> None:
        self.attempts.append(event)
        if self.broken or self.fail_events > 0:
            self.fail_events -= 1
            raise StorageError("database is locked")
        await super().on_event(event)


def records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and text in r.getMessage()]


def new_thread(fake: FakeDiscord) -> int:
    thread_id = fake.snowflake()
    fake.threads[thread_id] = fake.thread_payload(thread_id, fake.channel_id, "prompt")
    fake.messages[thread_id] = []
    return thread_id


async def test_a_reply_the_engine_fails_to_store_is_handed_over_again_until_stored(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    handler = FailingHandler(fail_events=2)
    adapter = make_adapter(fake, store_retry_first=0.01)
    await adapter.start(handler)
    try:
        thread_id = new_thread(fake)
        message = await fake.say(thread_id, fake.max, "kept despite the hiccup")
        await eventually(lambda: bool(replies(handler)))
    finally:
        await adapter.stop()
    assert [e.text for e in replies(handler)] == ["kept despite the hiccup"]
    assert len(handler.attempts) == 3
    (warning,) = records(caplog, logging.WARNING, "not stored")  # once, however many attempts
    assert f"message {message['id']}" in warning.getMessage()
    assert warning.exc_info is not None  # the engine's traceback
    assert records(caplog, logging.INFO, "stored on attempt 3")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_reply_still_not_stored_at_stop_is_logged_as_an_error_naming_it(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    handler = FailingHandler(broken=True)
    adapter = make_adapter(fake, store_retry_first=0.01)
    await adapter.start(handler)
    thread_id = new_thread(fake)
    message = await fake.say(thread_id, fake.max, "said while the database is down")
    await eventually(lambda: len(handler.attempts) >= 2, what="a second attempt")
    await asyncio.wait_for(adapter.stop(), 5)  # a held event does not hold up stop
    (error,) = records(caplog, logging.ERROR, "was not stored")
    assert f"message {message['id']}" in error.getMessage()
    assert "the adapter stopped" in error.getMessage()
    assert handler.events == []


async def test_a_reply_not_stored_within_the_budget_is_given_up_as_an_error(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    handler = FailingHandler(broken=True)
    adapter = make_adapter(fake, store_retry_first=0.01, store_retry_budget=0.2)
    await adapter.start(handler)
    try:
        thread_id = new_thread(fake)
        await fake.say(thread_id, fake.max, "never stored")
        await eventually(lambda: bool(records(caplog, logging.ERROR, "was not stored")), what="giving up")
        (error,) = records(caplog, logging.ERROR, "was not stored")
        assert "attempts" in error.getMessage()
        client = adapter.client
        assert client is not None
        await eventually(lambda: client.gate.in_flight == 0, what="no event held any longer")
    finally:
        await adapter.stop()
    assert len(handler.attempts) >= 2


async def test_a_store_that_keeps_failing_pauses_the_gateway_and_loses_nothing(fake: FakeDiscord) -> None:
    handler = FailingHandler(broken=True)
    adapter = make_adapter(fake, max_in_flight=2, store_retry_first=0.01)
    await adapter.start(handler)
    try:
        client = adapter.client
        assert client is not None
        thread_id = new_thread(fake)
        for i in range(6):
            await fake.say(thread_id, fake.max, f"reply {i}")
        await eventually(lambda: len(handler.attempts) >= 6, what="the held events to be tried again")
        assert not client.gate.is_open  # the held events fill the bound: reading is paused
        assert {e.text for e in handler.attempts if isinstance(e, ReplyPosted)} == {"reply 0", "reply 1"}
        handler.broken = False
        await eventually(lambda: len(replies(handler)) == 6)
        assert sorted(e.text for e in replies(handler)) == [f"reply {i}" for i in range(6)]
    finally:
        await adapter.stop()


async def test_a_backfill_leaves_what_it_could_not_store_for_the_next_backfill(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    handler = FailingHandler(fail_events=1)
    adapter = make_adapter(fake)
    await adapter.start(handler)
    try:
        thread_id = new_thread(fake)
        fake.say_offline(thread_id, fake.max, "first while away")
        fake.say_offline(thread_id, fake.olga, "second while away")
        thread = ThreadRef(channel=channel(fake), thread_id=str(thread_id))
        await adapter.backfill([thread])
        assert [e.text for e in replies(handler)] == ["second while away"]
        (error,) = records(caplog, logging.ERROR, "1 event(s) not stored")
        assert str(thread_id) in error.getMessage()
        await adapter.backfill([thread])  # the engine ignores what it already has
        assert [e.text for e in replies(handler)] == ["second while away", "first while away", "second while away"]
    finally:
        await adapter.stop()
