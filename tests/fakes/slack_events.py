"""What Slack sends to an app: signed HTTP requests and the payloads inside them.

``SlackSender`` signs exactly as Slack does (``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``
with the signing secret, in ``X-Slack-Signature`` and ``X-Slack-Request-Timestamp``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack_api import APP_ID, BOT_USER_ID, TEAM_ID

SIGNING_SECRET = "fake-signing-secret"
API_APP_ID = APP_ID

_event_ids = itertools.count(1)
_ts = itertools.count(1)
_triggers = itertools.count(1)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def next_ts() -> str:
    """A fresh member-message ts (distinct from the fake's bot post ts range)."""
    return f"{1_800_000_000 + next(_ts)}.000200"


def next_trigger_id() -> str:
    """Slack gives every command and interaction a trigger id of its own, so no two bodies are alike."""
    n = next(_triggers)
    return f"{13_345_224_609 + n}.738474920.{n:021x}"


def event_callback(
    event: Mapping[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    app_id: str = API_APP_ID,
    enterprise_id: str | None = None,
    org_wide: bool = False,
) -> dict[str, Any]:
    """An Events API envelope as Slack sends it for the installation ``team_id`` (in the Grid
    org ``enterprise_id``, if given) of the app ``app_id``."""
    body: dict[str, Any] = {
        "token": "unused",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": enterprise_id, "team_id": team_id, "user_id": BOT_USER_ID,
                            "is_bot": True, "is_enterprise_install": org_wide}],
        "is_ext_shared_channel": False,
    }
    if enterprise_id is not None:
        body["enterprise_id"] = enterprise_id
    return body


def reply_event(channel: str, thread_ts: str, user: str, text: str, *, ts: str | None = None) -> dict[str, Any]:
    ts = ts or next_ts()
    return {
        "type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
        "thread_ts": thread_ts, "event_ts": ts, "channel_type": "channel", "team": TEAM_ID,
    }


def edit_event(channel: str, thread_ts: str, user: str, ts: str, old: str, new: str) -> dict[str, Any]:
    edited_ts = next_ts()
    return {
        "type": "message", "subtype": "message_changed", "channel": channel, "hidden": True,
        "ts": edited_ts, "event_ts": edited_ts,
        "message": {"type": "message", "user": user, "text": new, "ts": ts, "thread_ts": thread_ts,
                    "edited": {"user": user, "ts": edited_ts}},
        "previous_message": {"type": "message", "user": user, "text": old, "ts": ts, "thread_ts": thread_ts},
    }


def delete_event(channel: str, thread_ts: str, user: str, ts: str) -> dict[str, Any]:
    event_ts = next_ts()
    return {
        "type": "message", "subtype": "message_deleted", "channel": channel, "hidden": True,
        "ts": event_ts, "event_ts": event_ts, "deleted_ts": ts,
        "previous_message": {"type": "message", "user": user, "text": "gone", "ts": ts, "thread_ts": thread_ts},
    }


def reaction_event(channel: str, ts: str, user: str, emoji: str, *, added: bool = True) -> dict[str, Any]:
    return {
        "type": "reaction_added" if added else "reaction_removed", "user": user, "reaction": emoji,
        "item": {"type": "message", "channel": channel, "ts": ts}, "item_user": "U0",
        "event_ts": next_ts(),
    }


def command_form(
    channel: str,
    user: str,
    text: str,
    *,
    response_url: str,
    command: str = "/popup",
    team_id: str = TEAM_ID,
    app_id: str = API_APP_ID,
    enterprise_id: str | None = None,
) -> dict[str, str]:
    form = {
        "token": "unused", "team_id": team_id, "team_domain": "fake", "channel_id": channel,
        "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": command,
        "text": text, "api_app_id": app_id, "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": next_trigger_id(),
    }
    if enterprise_id is not None:
        form.update(enterprise_id=enterprise_id, enterprise_name="Fake Org")
    return form


def block_actions(
    channel: str,
    user: str,
    *,
    response_url: str,
    team_id: str = TEAM_ID,
    app_id: str = API_APP_ID,
    enterprise_id: str | None = None,
) -> dict[str, Any]:
    """An interactive payload: a member pressed a button on one of the app's messages."""
    enterprise = {"id": enterprise_id, "name": "Fake Org"} if enterprise_id else None
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": app_id,
        "token": "unused",
        "container": {"type": "message", "message_ts": "1700000001.000100", "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": next_trigger_id(),
        "team": {"id": team_id, "domain": "fake", **({"enterprise_id": enterprise_id} if enterprise_id else {})},
        "enterprise": enterprise,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"},
        "response_url": response_url,
        "actions": [{"action_id": "popup-button", "block_id": "b1", "type": "button", "value": "go",
                     "action_ts": "1700000002.000200", "text": {"type": "plain_text", "text": "Go"}}],
    }


@dataclass(slots=True)
class SlackSender:
    """Posts to the app's HTTP endpoint the way Slack does."""

    url: str
    secret: str = SIGNING_SECRET
    session: aiohttp.ClientSession | None = None
    sent: list[int] = field(default_factory=list)

    async def __aenter__(self) -> SlackSender:
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def raw(
        self,
        body: bytes,
        *,
        content_type: str,
        signed: bool = True,
        timestamp: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        assert self.session is not None
        ts = str(timestamp if timestamp is not None else int(time.time()))
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if signed:
            all_headers["X-Slack-Request-Timestamp"] = ts
            all_headers["X-Slack-Signature"] = sign(self.secret, ts, body)
        async with self.session.post(self.url, data=body, headers=all_headers) as response:
            self.sent.append(response.status)
            return response.status, await response.text()

    async def event(self, payload: Mapping[str, Any], *, retry_num: int | None = None, **kw: Any) -> tuple[int, str]:
        headers = dict(kw.pop("headers", None) or {})
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        body = json.dumps(payload).encode()
        return await self.raw(body, content_type="application/json", headers=headers, **kw)

    async def command(self, form: Mapping[str, str], **kw: Any) -> tuple[int, str]:
        body = urlencode(dict(form)).encode()
        return await self.raw(body, content_type="application/x-www-form-urlencoded", **kw)

    async def interactive(self, payload: Mapping[str, Any], **kw: Any) -> tuple[int, str]:
        """An interactive payload, sent as Slack does: a form with its JSON in ``payload``."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.raw(body, content_type="application/x-www-form-urlencoded", **kw)
