"""Logging is configured here only, for the whole process; every other module just logs."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Token shapes of the platforms we talk to, redacted even when they are not our own.
_TOKEN_SHAPES = re.compile(r"\b(?:xox[abposr]-|xapp-)[0-9A-Za-z-]{8,}|\b[MN][\w-]{23,25}\.[\w-]{6}\.[\w-]{27,38}\b")


class RedactSecrets(logging.Filter):
    """Replaces every known secret (and anything shaped like a Slack or Discord token) with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = _TOKEN_SHAPES.sub("***", message)
        for secret in self._secrets:
            clean = clean.replace(secret, "***")
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, so that it is redacted too.
            formatter = logging.Formatter()
            text = formatter.formatException(record.exc_info)
            for secret in self._secrets:
                text = text.replace(secret, "***")
            clean = f"{clean}\n{_TOKEN_SHAPES.sub('***', text)}"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = clean, None
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The SDKs log whole requests at DEBUG; keep them to what an operator needs.
    for noisy in ("slack_sdk", "slack_bolt", "discord", "apscheduler", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
