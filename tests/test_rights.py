"""The rights rule as a table: who may run which word on whose session, and the organiser forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sessions.model import ChannelRef, Member
from sessions.records import SessionRecord, SessionState
from sessions.rights import Organiser, OrganiserKind, may_run, parse_organiser, refusal

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SESSION = SessionRecord(  # started on Slack by U0ANA
    id=1,
    plan_name="p",
    title="P",
    intro="",
    timezone="UTC",
    channels=(ChannelRef(platform="slack", channel_id="C1"), ChannelRef(platform="discord", channel_id="42")),
    state=SessionState.RUNNING,
    anonymous=False,
    started_by="U0ANA",
    started_at=AT,
    recap_at=AT,
)


def slack(user_id: str, *roles: str, admin: bool = False) -> Member:
    return Member(platform="slack", user_id=user_id, display_name=user_id, roles=roles, is_admin=admin)


def discord(user_id: str, *roles: str, admin: bool = False) -> Member:
    return Member(platform="discord", user_id=user_id, display_name=user_id, roles=roles, is_admin=admin)


STARTER = slack("U0ANA")
STRANGER = slack("U0BEN")
STARTER_ID_ON_DISCORD = Member(platform="discord", user_id="U0ANA", display_name="ana")
SLACK_ADMIN = slack("U0ADA", admin=True)
DISCORD_ADMIN = discord("7", admin=True)
CONSOLE_OPERATOR = Member(platform="console", user_id="you", display_name="you", is_admin=True)

ROLE = Organiser(platform="discord", kind=OrganiserKind.ROLE, id="555")
OLGA = Organiser(platform="slack", kind=OrganiserKind.USER, id="U0OLGA")
LISTED = (ROLE, OLGA)
BEN_AS_ROLE = Organiser(platform="slack", kind=OrganiserKind.ROLE, id="U0BEN")
BEN_ON_DISCORD = Organiser(platform="discord", kind=OrganiserKind.USER, id="U0BEN")

END_OR_ADVANCE = ("stop", "cancel", "next")
OPEN = ("status", "plans", "forget", "help", "nonsense")

# (who, words, organisers, allowed)
TABLE = [
    # No organisers: anyone starts; only the starter (same platform) or an admin ends or advances.
    (STRANGER, ("start",), (), True),
    (STARTER, END_OR_ADVANCE, (), True),
    (STRANGER, END_OR_ADVANCE, (), False),
    (STARTER_ID_ON_DISCORD, END_OR_ADVANCE, (), False),
    (SLACK_ADMIN, END_OR_ADVANCE, (), True),
    (DISCORD_ADMIN, END_OR_ADVANCE, (), True),
    (CONSOLE_OPERATOR, END_OR_ADVANCE, (), True),
    (STRANGER, OPEN, (), True),
    # Organisers listed: they and admins do it all, nobody else, not even the starter.
    (slack("U0OLGA"), ("start", *END_OR_ADVANCE), LISTED, True),
    (discord("9", "555"), ("start", *END_OR_ADVANCE), LISTED, True),
    (SLACK_ADMIN, ("start", *END_OR_ADVANCE), LISTED, True),
    (STARTER, ("start", *END_OR_ADVANCE), LISTED, False),
    (STRANGER, ("start", *END_OR_ADVANCE), LISTED, False),
    (discord("U0OLGA"), ("start", *END_OR_ADVANCE), LISTED, False),  # Olga's id, on Discord
    (discord("9", "U0OLGA"), ("start", *END_OR_ADVANCE), LISTED, False),  # a Discord role with Olga's id
    (discord("555"), ("start", *END_OR_ADVANCE), LISTED, False),  # a user whose id is the role's
    (slack("U0BEN"), ("start",), (BEN_AS_ROLE,), False),  # a role entry never matches a user id
    (slack("U0BEN"), ("start",), (BEN_ON_DISCORD,), False),
    (STRANGER, OPEN, LISTED, True),
]


@pytest.mark.parametrize(("who", "words", "organisers", "allowed"), TABLE)
def test_may_run(who: Member, words: tuple[str, ...], organisers: tuple[Organiser, ...], allowed: bool) -> None:
    for word in words:
        assert may_run(who, word, SESSION, organisers) is allowed, (who, word)


def test_without_a_session_only_start_and_admins_pass() -> None:
    for word in END_OR_ADVANCE:
        assert not may_run(STARTER, word, None, ())
        assert may_run(SLACK_ADMIN, word, None, ())
    assert may_run(STRANGER, "start", None, ())


def test_refusals_say_who_may() -> None:
    assert refusal("stop", ()) == (
        "Only the member who started this session, or an admin, can stop it. Ask them, or try /popup status."
    )
    assert "can cancel it." in refusal("cancel", ())
    assert "can post its next prompt." in refusal("next", ())
    assert refusal("stop", LISTED).startswith("Only the session's organisers can do that.")
    assert refusal("start", LISTED).startswith("Only the session's organisers can do that.")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("slack:U0123ABC", Organiser(platform="slack", kind=OrganiserKind.USER, id="U0123ABC")),
        ("slack:W0123ABC", Organiser(platform="slack", kind=OrganiserKind.USER, id="W0123ABC")),
        ("discord:80351110224678912", Organiser(platform="discord", kind=OrganiserKind.USER, id="80351110224678912")),
        ("discord:role:4177198342", Organiser(platform="discord", kind=OrganiserKind.ROLE, id="4177198342")),
        ("console:you", Organiser(platform="console", kind=OrganiserKind.USER, id="you")),
    ],
)
def test_the_documented_organiser_forms(text: str, parsed: Organiser) -> None:
    assert parse_organiser(text) == parsed
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "Organiser",  # a bare role name
        "U0123ABC",  # a bare Slack id: which platform?
        "80351110224678912",  # a bare Discord id
        "discord:role:Organiser",  # a Discord role by name
        "discord:Organiser",
        "slack:alice",  # a Slack handle, not an id
        "slack:role:U0123",
        "teams:U0123",
        "Slack:U0123",
        "console:",
        "slack:U0123 ",
        "discord:123\n",
        "",
    ],
)
def test_anything_else_is_no_organiser(text: str) -> None:
    assert parse_organiser(text) is None
