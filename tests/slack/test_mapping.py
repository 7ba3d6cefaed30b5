"""Mapping Slack payloads to neutral events: recorded shapes, the ones we ignore, and any JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.mapping import (
    SlackUser,
    command_member,
    map_command,
    map_event,
    map_thread_message,
    thread_id,
    ts_to_datetime,
    user_from_info,
)
from sessions.model import Member, ReactionChanged, ReplyDeleted, ReplyEdited, ReplyPosted
from tests.fakes import slack_events as ev

NOW = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PARENT = "1700000001.000100"


def test_threaded_reply_maps_to_reply_posted() -> None:
    body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "hello <@U2>", ts="1800000000.000200"),
                             event_id="Ev1")
    event = map_event(body, bot_user_id="UBOT")
    assert isinstance(event, ReplyPosted)
    assert event.thread.thread_id == f"C1:{PARENT}" == thread_id("C1", PARENT)
    assert event.thread.channel.platform == "slack"
    assert event.message.message_id == "1800000000.000200"
    assert event.message.channel.channel_id == "C1"
    assert event.author.user_id == "U1"
    assert event.text == "hello <@U2>"  # carried verbatim; escaping is the renderer's job
    assert event.at == datetime.fromtimestamp(1800000000.0002, tz=UTC)
    assert event.delivery_id == "Ev1"


def test_broadcast_and_file_share_replies_count() -> None:
    for subtype in ("thread_broadcast", "file_share"):
        raw = ev.reply_event("C1", PARENT, "U1", "x")
        raw["subtype"] = subtype
        assert isinstance(map_event(ev.event_callback(raw)), ReplyPosted)


def test_ignored_messages() -> None:
    top_level = ev.reply_event("C1", PARENT, "U1", "x")
    del top_level["thread_ts"]
    parent = ev.reply_event("C1", PARENT, "U1", "x", ts=PARENT)
    from_bot = ev.reply_event("C1", PARENT, "U9", "x") | {"bot_id": "B9"}
    bot_message = ev.reply_event("C1", PARENT, "U9", "x") | {"subtype": "bot_message"}
    ourselves = ev.reply_event("C1", PARENT, "UBOT", "x")
    joined = ev.reply_event("C1", PARENT, "U1", "x") | {"subtype": "channel_join"}
    for raw in (top_level, parent, from_bot, bot_message, ourselves, joined):
        assert map_event(ev.event_callback(raw), bot_user_id="UBOT") is None, raw
    assert map_event(ev.event_callback({"type": "app_mention", "channel": "C1"})) is None
    assert map_event({"type": "url_verification", "challenge": "x"}) is None


def test_edit_maps_with_edit_time_and_thread() -> None:
    raw = ev.edit_event("C1", PARENT, "U1", "1800000000.000200", "old", "new <!here>")
    event = map_event(ev.event_callback(raw, event_id="Ev2"), bot_user_id="UBOT")
    assert isinstance(event, ReplyEdited)
    assert event.message.message_id == "1800000000.000200"
    assert event.text == "new <!here>"
    assert event.at == ts_to_datetime(raw["message"]["edited"]["ts"])
    assert event.thread is not None
    assert event.thread.thread_id == f"C1:{PARENT}"
    assert event.delivery_id == "Ev2"


def test_edit_without_new_words_or_by_a_bot_is_ignored() -> None:
    unfurl = ev.edit_event("C1", PARENT, "U1", "1800000000.000200", "same", "same")
    assert map_event(ev.event_callback(unfurl)) is None
    bot_edit = ev.edit_event("C1", PARENT, "UBOT", "1800000000.000200", "a", "b")
    bot_edit["message"]["bot_id"] = "BBOT"
    assert map_event(ev.event_callback(bot_edit), bot_user_id="UBOT") is None


def test_deletion_maps_and_parent_deletion_is_ignored() -> None:
    raw = ev.delete_event("C1", PARENT, "U1", "1800000000.000200")
    event = map_event(ev.event_callback(raw))
    assert isinstance(event, ReplyDeleted)
    assert event.message.message_id == "1800000000.000200"
    unknown = dict(raw)
    del unknown["previous_message"]
    assert isinstance(map_event(ev.event_callback(unknown)), ReplyDeleted)  # the engine decides
    parent = ev.delete_event("C1", PARENT, "U1", PARENT)
    assert map_event(ev.event_callback(parent)) is None


def test_reactions_map_both_ways_and_skip_files_and_ourselves() -> None:
    added = map_event(ev.event_callback(ev.reaction_event("C1", "1800000000.000200", "U2", "tada")))
    removed = map_event(ev.event_callback(ev.reaction_event("C1", "1800000000.000200", "U2", "tada", added=False)))
    assert isinstance(added, ReactionChanged)
    assert added.added
    assert added.emoji == "tada"
    assert isinstance(removed, ReactionChanged)
    assert not removed.added
    assert added.message.message_id == "1800000000.000200"
    assert added.message.channel.channel_id == "C1"
    on_file = ev.reaction_event("C1", "1", "U2", "tada")
    on_file["item"] = {"type": "file", "file": "F1"}
    assert map_event(ev.event_callback(on_file)) is None
    ours = ev.reaction_event("C1", "1800000000.000200", "UBOT", "tada")
    assert map_event(ev.event_callback(ours), bot_user_id="UBOT") is None


def test_command_words() -> None:
    form = ev.command_form("C1", "U1", "  Start  learning-culture tomorrow anonymous ", response_url="http://x")
    command = map_command(form, at=NOW)
    assert command is not None
    assert command.name == "start"
    assert command.args == ("learning-culture", "tomorrow", "anonymous")
    assert command.channel.channel_id == "C1"
    assert command.channel.platform == "slack"
    assert command.member.user_id == "U1"
    assert command.member.roles == ()
    assert not command.member.is_admin
    assert command.at == NOW
    empty = map_command(ev.command_form("C1", "U1", "", response_url="http://x"), at=NOW)
    assert empty is not None
    assert empty.name == "help"
    assert empty.args == ()
    assert map_command({"text": "start"}, at=NOW) is None


def test_a_command_payload_cannot_claim_admin_rights() -> None:
    form: dict[str, Any] = {**ev.command_form("C1", "U1", "stop", response_url="http://x"), "is_admin": "true"}
    command = map_command(form, at=NOW)
    assert command is not None
    assert command.member.is_admin is False  # only users.info says who is an admin


def test_users_info_admins_and_owners_are_admins() -> None:
    profile = {"display_name": "", "real_name": "Ada L."}
    assert user_from_info({"id": "U1", "name": "ada", "profile": profile}) == SlackUser(name="Ada L.", is_admin=False)
    for flag in ("is_admin", "is_owner", "is_primary_owner"):
        assert user_from_info({"id": "U1", "name": "ada", flag: True}) == SlackUser(name="ada", is_admin=True)
    for odd in ("true", 1, None, [True]):  # only a JSON true counts
        assert user_from_info({"id": "U1", "is_admin": odd}).is_admin is False
    assert user_from_info(None) == SlackUser(name="", is_admin=False)


def test_the_command_member_takes_name_and_admin_flag_from_users_info() -> None:
    typed = Member(platform="slack", user_id="U1", display_name="ada")
    assert command_member(typed, SlackUser(name="Ada", is_admin=True)) == Member(
        platform="slack", user_id="U1", display_name="Ada", is_admin=True
    )
    assert command_member(typed, SlackUser(name="", is_admin=False)) == typed  # the handle stands in
    claimed = Member(platform="slack", user_id="U1", display_name="ada", is_admin=True)
    assert command_member(claimed, None) == typed  # Slack could not be asked: no admin


def test_ts_parsing_is_total() -> None:
    assert ts_to_datetime("1700000000.000100") == datetime.fromtimestamp(1700000000.0001, tz=UTC)
    bad_values: list[object] = ["", "abc", "nan", "inf", "1e400", None, True, [], {}, -1e20]
    for bad in bad_values:
        assert ts_to_datetime(bad) is None


# -- any JSON at all -----------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
_keys = st.sampled_from(
    ["type", "subtype", "channel", "user", "text", "ts", "thread_ts", "event_ts", "bot_id", "message",
     "previous_message", "edited", "deleted_ts", "item", "reaction", "event_id", "channel_id", "user_id",
     "user_name", "bot_profile"]
)
_values = st.one_of(
    _json,
    st.sampled_from(["message", "reaction_added", "reaction_removed", "message_changed", "message_deleted",
                     "thread_broadcast", "1700000000.000100", "1800000000.000200", "C1", "U1", "UBOT", "nan"]),
)
_shaped: st.SearchStrategy[Any] = st.recursive(
    st.dictionaries(_keys, _values, max_size=8),
    lambda children: st.dictionaries(_keys, children | _values, max_size=8),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_json, _shaped, st.builds(lambda e, i: {"event": e, "event_id": i}, _shaped, _values)))
def test_mapping_never_raises_for_any_json(body: Any) -> None:
    for bot in (None, "UBOT"):
        event = map_event(body, bot_user_id=bot)
        assert event is None or isinstance(event, ReplyPosted | ReplyEdited | ReplyDeleted | ReactionChanged)
    command = map_command(body, at=NOW)
    assert command is None or command.name
    assert isinstance(user_from_info(body), SlackUser)
    for channel in ("C1", ""):  # back-fill maps conversations.replies messages one by one
        reply = map_thread_message(channel, body, bot_user_id="UBOT")
        assert reply is None or isinstance(reply, ReplyPosted)
