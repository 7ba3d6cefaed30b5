"""Slash commands on Slack: acknowledge, map, look up who asked, run, answer.

Slack wants a command acknowledged within 3 s and the engine may need longer (``start`` posts the
opening message before it answers), so a command is acknowledged at once and run as a task the
adapter owns; the engine's answer follows through the command's ``response_url``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.proxy_env_variable_loader import load_http_proxy_from_env

from adapters.slack.failures import describe
from adapters.slack.installation import Origin, origin_of
from adapters.slack.mapping import map_command
from adapters.slack.render import escape
from adapters.slack.workspaces import Workspace, Workspaces
from sessions.errors import CommandError, DeliveryError
from sessions.model import CommandInvoked, CommandReply
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)

_SORRY = "Sorry, something went wrong while handling that command. Please try again in a moment."


class SlackCommands:
    """bolt's slash-command listener (:meth:`on_command`) and the run that follows it.

    ``handler`` says the engine to run commands with (None while the adapter is stopped);
    ``ours`` the workspace a command comes from (bolt has refused those of others before);
    ``spawn`` runs a coroutine as a task the adapter owns.
    """

    def __init__(
        self,
        *,
        workspaces: Workspaces,
        ours: Callable[[dict[str, Any]], Awaitable[Workspace | None]],
        handler: Callable[[], EventHandler | None],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self._workspaces = workspaces
        self._ours = ours
        self._handler = handler
        self._spawn = spawn
        self._responder = Responder()

    async def on_command(self, body: dict[str, Any], ack: Callable[..., Awaitable[Any]], respond: Any) -> None:
        await ack()  # first, always: Slack shows the user an error after 3 s without it
        command = map_command(body, at=datetime.now(UTC))
        if command is None:
            _log.warning("slack: ignored a slash command without channel or user")
            return
        workspace = await self._ours(body)
        if workspace is None:
            return  # uninstalled since bolt let it through
        url = body.get("response_url")
        if isinstance(url, str) and url:
            respond = functools.partial(self._responder.send, url)  # one kept-alive session for all
        self._spawn(self._run(command, respond, workspace, origin_of(body)))

    async def _run(self, command: CommandInvoked, respond: Any, workspace: Workspace, origin: Origin) -> None:
        handler = self._handler()
        if handler is None:
            return
        # Before the engine posts there: the channel's workspace is where its token comes from.
        try:
            await self._workspaces.learn(command.channel.channel_id, origin, workspace)
        except Exception as error:
            _log.warning("slack: could not note the workspace of %s (%s)", command.channel.channel_id, error)
        command = dataclasses.replace(command, member=await workspace.names.member(command.member))
        try:
            reply = await handler.on_command(command)
        except CommandError as error:
            reply = CommandReply(text=str(error), ephemeral=True)
        except Exception:
            _log.exception("slack: /popup %s failed", command.name)
            reply = CommandReply(text=_SORRY, ephemeral=True)
        try:
            await respond(
                text=escape(reply.text), response_type="ephemeral" if reply.ephemeral else "in_channel"
            )
        except Exception as error:
            _log.warning("slack: could not answer /popup %s (%s: %s)", command.name, type(error).__name__, error)

    async def close(self) -> None:
        await self._responder.close()


class Responder:
    """Answers slash commands through their ``response_url`` over one kept-alive HTTP session.

    bolt's ``respond`` builds a webhook client, an HTTP session and a TCP (and TLS) connection for
    every answer; under load that costs more than the command itself. The message is the same
    (``text`` and ``response_type`` as JSON), and so is the proxy: the SDK's, read from the
    environment once (aiohttp's ``trust_env`` would read it, and ``~/.netrc``, on every request).
    """

    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._proxy = load_http_proxy_from_env(_log)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, response_url: str, *, text: str, response_type: str) -> None:
        """Post the answer; raises :class:`DeliveryError` if it was not taken."""
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(timeout=self._timeout)
        message = {"text": text, "response_type": response_type}
        try:
            async with session.post(response_url, json=message, proxy=self._proxy) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as error:
            raise DeliveryError(f"response_url unreachable ({describe(error)})") from error
        if status >= 400:
            raise DeliveryError(f"response_url answered {status}")

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
