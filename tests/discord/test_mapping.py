"""Payload mapping: recorded-shape payloads, and hypothesis over arbitrary JSON (nothing escapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import discord
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.discord.mapping import edit_from_payload, member_from, reply_from_message, start_args
from sessions.model import ReplyEdited, ReplyPosted
from tests.fakes.discord_server import FakeDiscord

WORLD = FakeDiscord()


@pytest.fixture(scope="module")
def state() -> Any:
    """A discord.py connection state that knows the fake's guild, channel and one thread."""
    client = discord.Client(intents=discord.Intents(guilds=True))
    state = client._connection
    guild_data = WORLD.guild_payload()
    guild_data["threads"] = [WORLD.thread_payload(4242, WORLD.channel_id, "Prompt 1")]
    state._add_guild_from_data(guild_data)  # type: ignore[arg-type]
    return state


def build(state: Any, payload: dict[str, Any]) -> discord.Message:
    channel, _ = state._get_guild_channel(payload)
    return discord.Message(state=state, channel=channel, data=payload)  # type: ignore[arg-type]


def member_message(channel_id: int | str, text: str = "hello", *, user: Any = WORLD.olga) -> dict[str, Any]:
    payload = WORLD.message_payload(int(channel_id), user, content=text)
    payload.update(guild_id=str(WORLD.guild_id), member=user.member_payload(with_user=False))
    return payload


def test_reply_in_a_cached_thread_names_its_parent_and_author_roles(state: Any) -> None:
    event = reply_from_message(build(state, member_message(4242, "I learn by teaching")))
    assert isinstance(event, ReplyPosted)
    assert event.thread.thread_id == "4242"
    assert event.thread.channel.channel_id == str(WORLD.channel_id)
    assert event.message.channel.channel_id == "4242"
    assert event.text == "I learn by teaching"
    assert event.author.user_id == str(WORLD.olga.id)
    assert event.author.display_name == "Olga"
    # Role ids only: a role's name is anyone's to choose (Manage Roles), so it must never grant rights.
    assert event.author.roles == (str(WORLD.organiser_role_id),)
    assert event.author.is_admin is False


def test_reply_in_an_uncached_thread_is_forwarded_with_the_thread_as_channel(state: Any) -> None:
    message = build(state, member_message(99999))
    assert isinstance(message.channel, discord.PartialMessageable)
    event = reply_from_message(message)
    assert event is not None
    assert event.thread.thread_id == "99999"
    assert event.thread.channel.channel_id == "99999"


def test_channel_messages_bots_and_system_messages_are_not_replies(state: Any) -> None:
    assert reply_from_message(build(state, member_message(WORLD.channel_id))) is None
    assert reply_from_message(build(state, member_message(4242, user=WORLD.bot))) is None
    system = member_message(4242)
    system["type"] = 18  # thread created
    assert reply_from_message(build(state, system)) is None


def test_attachments_become_links_in_the_reply_text(state: Any) -> None:
    payload = member_message(4242, "my drawing")
    payload["attachments"] = [
        {
            "id": "1",
            "filename": "a.png",
            "size": 3,
            "url": "https://cdn.example/a.png",
            "proxy_url": "https://cdn.example/a.png",
        }
    ]
    event = reply_from_message(build(state, payload))
    assert event is not None
    assert event.text == "my drawing\nhttps://cdn.example/a.png"


def test_manage_server_makes_an_admin(state: Any) -> None:
    guild = state._get_guild(WORLD.guild_id)
    member = discord.Member(data=WORLD.max.member_payload(), guild=guild, state=state)  # type: ignore[arg-type]
    assert member_from(member).is_admin is False
    assert member_from(member, permissions=discord.Permissions(manage_guild=True)).is_admin is True
    assert member_from(member, permissions=discord.Permissions(administrator=True)).is_admin is True


def test_edit_payload_uses_the_edit_time_and_ignores_previews() -> None:
    payload = member_message(4242, "changed")
    payload["edited_timestamp"] = "2026-01-02T03:04:05.123000+00:00"
    event = edit_from_payload(payload)
    assert isinstance(event, ReplyEdited)
    assert event.at == datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert event.text == "changed"
    assert event.message.channel.channel_id == "4242"
    preview = member_message(4242)  # an embed unfurl: no edited_timestamp
    assert edit_from_payload(preview) is None
    bot_edit = dict(payload, author=WORLD.bot.payload())
    assert edit_from_payload(bot_edit) is None


def test_start_args_leave_empty_options_out() -> None:
    assert start_args(None, None, None) == ()
    assert start_args("retro", " ", False) == ("retro",)
    assert start_args("retro", "tomorrow", True) == ("retro", "tomorrow", "anonymous")
    assert start_args(None, "2026-12-01", True) == ("2026-12-01", "anonymous")


# -- hypothesis -------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
snowflakes = st.one_of(
    st.integers(min_value=-5, max_value=2**70).map(str), st.integers(), st.text(max_size=25), st.none()
)
timestamps = st.one_of(st.none(), st.text(max_size=40), st.datetimes().map(lambda d: d.isoformat()), st.integers())


@given(json_values)
def test_edit_mapping_survives_any_json(data: Any) -> None:
    edit_from_payload(data)


@given(
    st.fixed_dictionaries(
        {
            "id": snowflakes,
            "channel_id": snowflakes,
            "content": st.one_of(st.text(), json_values),
            "edited_timestamp": timestamps,
            "author": json_values,
            "attachments": st.one_of(json_values, st.lists(st.dictionaries(st.just("url"), json_values))),
            "webhook_id": st.one_of(st.none(), snowflakes),
        }
    )
)
def test_edit_mapping_survives_near_valid_payloads(data: dict[str, Any]) -> None:
    event = edit_from_payload(data)
    if event is not None:
        assert event.at.tzinfo is not None
        assert event.message.message_id.isdigit()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    channel=st.sampled_from([4242, 99999, WORLD.channel_id]),
    content=st.text(),
    kind=st.sampled_from([0, 19, 7, 18, 21]),
    bot=st.booleans(),
    webhook=st.booleans(),
    roles=st.lists(st.integers(min_value=1, max_value=2**63), max_size=3),
    with_member=st.booleans(),
    nick=st.none() | st.text(max_size=32),
    extra=st.dictionaries(st.sampled_from(["flags", "pinned", "tts", "mentions", "thread"]), json_values, max_size=2),
)
def test_message_mapping_survives_whatever_discord_py_accepts(
    state: Any,
    channel: int,
    content: str,
    kind: int,
    bot: bool,
    webhook: bool,
    roles: list[int],
    with_member: bool,
    nick: str | None,
    extra: dict[str, Any],
) -> None:
    payload = member_message(channel, content)
    payload["type"] = kind
    payload["author"]["bot"] = bot
    if webhook:
        payload["webhook_id"] = "77"
    if with_member:
        payload["member"]["roles"] = [str(r) for r in roles]
        payload["member"]["nick"] = nick
    else:
        del payload["member"]
    payload.update(extra)
    try:
        message = build(state, payload)
    except Exception:  # discord.py refusing a payload is not ours to test
        assume(False)
        return
    event = reply_from_message(message)
    if event is not None:
        assert event.text.startswith(content)
        assert not event.author.is_bot
