"""How failures on Slack are told: the errors that mean a call did not get through, one line for
the log that says why (Slack's error code, or the transport's), and background work that failed
with no one waiting on it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

_log = logging.getLogger(__name__)

TRANSPORT_ERRORS = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError)


def describe(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or error.response.status_code)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def report_failure(task: asyncio.Task[Any]) -> None:
    """A done callback for work no one waits on: its failure is logged, as nothing else would."""
    if not task.cancelled() and (error := task.exception()) is not None:
        _log.error("slack: background work failed", exc_info=error)
