"""Who Slack users are: a bounded cache of ``users.info`` answers (display names, admin flags)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.failures import TRANSPORT_ERRORS, describe
from adapters.slack.mapping import SlackUser, command_member, user_from_info
from sessions.model import Member

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Known:
    user: SlackUser
    at: float  # when Slack said so (on the cache's clock)


class NameCache:
    """Who Slack users are, from ``users.info``: display names and admin flags, remembered
    (bounded, least recently used evicted).

    A name is used however old it is. The admin flags grant rights, so a command trusts them for
    ``rights_max_age`` seconds only and otherwise asks again (the one call refreshes the name too):
    a demoted admin loses the rights within that time. Concurrent misses for one user (a burst of
    their replies, or a reply and Slack's retry of it) share one ``users.info`` call.
    """

    def __init__(
        self,
        reader: AsyncWebClient,
        *,
        size: int = 2048,
        rights_max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._size = size
        self._rights_max_age = rights_max_age
        self._clock = clock
        self._users: OrderedDict[str, _Known] = OrderedDict()
        self._pending: dict[str, asyncio.Future[_Known | None]] = {}

    def cached(self, user_id: str) -> str | None:
        """The remembered name ("" if Slack has none for the user), or None: then :meth:`get` asks."""
        known = self._remembered(user_id)
        return known.user.name if known is not None else None

    async def get(self, user_id: str, *, fallback: str = "") -> str:
        known = self._remembered(user_id) or await self._ask(user_id)
        name = known.user.name if known is not None else ""
        return name or fallback or user_id

    async def member(self, member: Member) -> Member:
        """``member`` (who typed a command) with their name and admin flag from ``users.info``;
        not an admin when Slack cannot be asked."""
        known = self._remembered(member.user_id)
        if known is None or self._clock() - known.at > self._rights_max_age:
            known = await self._ask(member.user_id)
        return command_member(member, known.user if known is not None else None)

    def _remembered(self, user_id: str) -> _Known | None:
        known = self._users.get(user_id)
        if known is not None:
            self._users.move_to_end(user_id)
        return known

    async def _ask(self, user_id: str) -> _Known | None:
        pending = self._pending.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)  # shielded: one waiter giving up is not all
        pending = self._pending[user_id] = asyncio.get_running_loop().create_future()
        known: _Known | None = None
        try:
            known = await self._look_up(user_id)
        finally:
            del self._pending[user_id]
            pending.set_result(known)  # None if this failed or was cancelled: ask again later
        return known

    async def _look_up(self, user_id: str) -> _Known | None:
        """What ``users.info`` says, remembered; None if Slack could not be asked."""
        try:
            response = await self._reader.users_info(user=user_id)
        except TRANSPORT_ERRORS as error:
            # Not cached: the next event tries again; meanwhile the id (or handle) stands in.
            _log.warning(
                "slack: users.info for %s failed (%s); using the id or handle, and no admin rights",
                user_id, describe(error),
            )
            return None
        known = self._users[user_id] = _Known(user=user_from_info(response.get("user")), at=self._clock())
        self._users.move_to_end(user_id)  # a refreshed entry is the newest
        if len(self._users) > self._size:
            self._users.popitem(last=False)
        return known
