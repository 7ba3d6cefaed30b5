"""Whose request is this? The workspace (or Enterprise Grid org) and app a Slack payload is for,
and whether that is the installation this bot runs as.

A correct signature (HTTP) or the app-level token (Socket Mode) proves only that Slack sent a
payload for *this app*; the same app can be installed in another workspace, and its events and
commands then arrive signed with the same secret. So every payload is also checked against the
installation learned at start-up (:meth:`adapters.slack.client.SlackPoster.identify`): ``auth.test``
names our team (and Grid org), ``bots.info`` for our bot names our app. Slack's own docs give that as the way to tell
whether a bot belongs to your app.

One Popup may serve several installations (``SLACK_BOT_TOKEN``'s and OAuth installs): which one a
payload names is looked up by :class:`adapters.slack.workspaces.Workspaces` (by team, else the org of
an org-wide install), and :meth:`Installation.is_ours` then says whether the payload is that
installation's, as for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """The installation a payload names ("" for what it does not say)."""

    team_id: str
    enterprise_id: str
    app_id: str

    def describe(self) -> str:
        return f"team {self.team_id or '?'}, enterprise {self.enterprise_id or '-'}, app {self.app_id or '?'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Installation:
    """Ours: the team and app the bot token belongs to.

    ``org_wide`` is an Enterprise Grid org-wide install: then every workspace of ``enterprise_id``
    is ours, and the team a payload names is whichever of them it happened in.
    """

    team_id: str
    app_id: str
    enterprise_id: str = ""
    org_wide: bool = False

    def is_ours(self, *, team_id: str, enterprise_id: str, app_id: str) -> bool:
        """Whether a payload naming these ids is for this installation. What it does not name
        (an empty id) is never taken for ours: Slack names the team and app on every payload."""
        if not app_id or app_id != self.app_id:
            return False
        if self.org_wide:
            return bool(enterprise_id) and enterprise_id == self.enterprise_id
        if not team_id or team_id != self.team_id:
            return False
        # A payload naming an org must name ours (and a workspace on no Grid org is in none).
        return not enterprise_id or enterprise_id == self.enterprise_id


def origin_of(payload: Mapping[str, Any]) -> Origin:
    """The team, Grid org and app a payload is for: an Events API envelope, a slash command's
    form, or an interactive payload. Pure; never raises.

    For events, the installation is ``authorizations[0]`` when present: in a channel shared with
    another organisation (Slack Connect) the envelope's ``team_id`` can be the other side's, while
    the authorization is the installation Slack delivered the event for.
    """
    team_id, enterprise_id, app_id = _ids(payload)
    return Origin(team_id=team_id, enterprise_id=enterprise_id, app_id=app_id)


def _ids(payload: Mapping[str, Any]) -> tuple[str, str, str]:
    """:func:`origin_of`'s (team, enterprise, app)."""
    app = _text(payload.get("api_app_id"))
    authorizations = payload.get("authorizations")
    if isinstance(authorizations, list) and authorizations and isinstance(authorizations[0], Mapping):
        # The whole installation, org included (none: not on Grid), whatever the envelope says.
        first = authorizations[0]
        return _text(first.get("team_id")), _text(first.get("enterprise_id")), app
    team, enterprise = "", ""
    view = payload.get("view")
    if not team and isinstance(view, Mapping):
        # A modal opened from a shared channel: the team that installed the app, not the user's.
        team = _text(view.get("app_installed_team_id"))
    if not team:
        team = _text(payload.get("team_id")) or _id(payload.get("team"))
    if not enterprise:
        enterprise = _text(payload.get("enterprise_id")) or _id(payload.get("enterprise"))
        team_object = payload.get("team")
        if not enterprise and isinstance(team_object, Mapping):
            enterprise = _text(team_object.get("enterprise_id"))
    return team, enterprise, app


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _id(value: object) -> str:
    """An id given either as a string or as an object with an ``id``."""
    if isinstance(value, Mapping):
        return _text(value.get("id"))
    return _text(value)
