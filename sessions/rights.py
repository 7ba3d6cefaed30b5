"""Who may run which ``/popup`` word: the one place the rule lives.

* With organisers configured (``[session] organisers``), only they and platform admins may start,
  stop, cancel or advance (``next``) a session.
* Without, anyone may start one, and only the member who started it and platform admins may stop,
  cancel or advance it. The starter is matched by platform *and* user id: the same id on another
  platform is someone else.

``join`` follows ``start``'s rule in the joining channel, and ``invite`` (a mailing list into the
session) ``next``'s. ``leave`` is for organisers (or, without them, the session's starter and
whoever joined the channel) and admins.

Every other word (``status``, ``plans``, ``forget``, ``link``, ``help``) is open to everyone.

An organiser is a platform-qualified user or role id, never a name: a Discord role's name can be
given to any role by anyone with Manage Roles, and a bare id could match on the wrong platform.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sessions.model import Member
from sessions.records import SessionRecord

GUARDED = frozenset({"start", "join", "stop", "cancel", "next", "leave", "invite"})

ORGANISER_FORMS = (
    '"slack:U123" (a Slack user), "discord:123456" (a Discord user), '
    '"discord:role:123456" (a Discord role) or "console:NAME"'
)

# What a refused member is told, per word, when no organisers are configured.
_STARTER_ONLY = {
    "stop": "stop it",
    "cancel": "cancel it",
    "next": "post its next prompt",
    "leave": "take this channel out of it",
    "invite": "invite a mailing list to it",
}


class OrganiserKind(enum.StrEnum):
    USER = "user"
    ROLE = "role"


@dataclass(frozen=True, slots=True, kw_only=True)
class Organiser:
    """One entry of ``[session] organisers``: a user or a role, on one platform."""

    platform: str
    kind: OrganiserKind
    id: str

    def matches(self, member: Member) -> bool:
        if member.platform != self.platform:
            return False
        if self.kind is OrganiserKind.ROLE:
            return self.id in member.roles
        return member.user_id == self.id

    def __str__(self) -> str:
        role = "role:" if self.kind is OrganiserKind.ROLE else ""
        return f"{self.platform}:{role}{self.id}"


# Each accepted form, and what it names; the id is the pattern's one group.
_FORMS = (
    (re.compile(r"slack:([UW][A-Z0-9]+)"), "slack", OrganiserKind.USER),
    (re.compile(r"discord:([0-9]{1,20})"), "discord", OrganiserKind.USER),
    (re.compile(r"discord:role:([0-9]{1,20})"), "discord", OrganiserKind.ROLE),
    (re.compile(r"console:(\S+)"), "console", OrganiserKind.USER),
)


def parse_organiser(text: str) -> Organiser | None:
    """``"discord:role:123"`` and the other :data:`ORGANISER_FORMS` as an :class:`Organiser`;
    None for anything else (a bare name or id, an unknown platform, a Discord role by name)."""
    for pattern, platform, kind in _FORMS:
        found = pattern.fullmatch(text)
        if found is not None:
            return Organiser(platform=platform, kind=kind, id=found[1])
    return None


def may_run(member: Member, command: str, session: SessionRecord | None, organisers: Sequence[Organiser]) -> bool:
    """Whether ``member`` may run ``/popup COMMAND`` on ``session`` (None when there is none yet,
    as for ``start``)."""
    if command not in GUARDED or member.is_admin:
        return True
    if organisers:
        return any(organiser.matches(member) for organiser in organisers)
    if command in ("start", "join"):
        return True
    return session is not None and started(member, session)


def may_leave(member: Member, session: SessionRecord, joined_by: str | None, organisers: Sequence[Organiser]) -> bool:
    """Whether ``member`` may take the channel that ``joined_by`` attached out of ``session``."""
    if may_run(member, "leave", session, organisers):
        return True
    return not organisers and joined_by == f"{member.platform}:{member.user_id}"


def started(member: Member, session: SessionRecord) -> bool:
    """Whether ``member`` is the one who started ``session`` (on the platform it was started on)."""
    return member.platform == session.channel.platform and member.user_id == session.started_by


def refusal(command: str, organisers: Sequence[Organiser]) -> str:
    """What a member refused by :func:`may_run` is told."""
    if organisers or command not in _STARTER_ONLY:
        return "Only the session's organisers can do that. Ask one of them, or try /popup status."
    return (
        f"Only the member who started this session, or an admin, can {_STARTER_ONLY[command]}. "
        "Ask them, or try /popup status."
    )
