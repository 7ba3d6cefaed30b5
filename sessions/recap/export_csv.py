"""The CSV export (see :mod:`sessions.recap.exports`).

CSV: RFC 4180 (``\\r\\n`` line ends, quoting by the csv module), one row per reply, the same
fields as the JSON's replies. A cell that a spreadsheet would run as a formula is prefixed with
``'``: see :func:`neutralise`. Sinks should be opened with ``newline=""`` so line ends pass
unchanged.
"""

from __future__ import annotations

import csv
import re
from typing import TextIO

from sessions.recap.export_fields import ExportChannels, iso, iso_seconds
from sessions.records import ReplyRecord, SessionRecord

CSV_COLUMNS = (
    "id",
    "prompt",
    "prompt_id",
    "created_at",
    "edited_at",
    "author",
    "author_id",
    "reactions",
    "edits",
    "platform",
    "channel",
    "channel_id",
    "message_id",
    "text",
    "late",
)
# A cell a spreadsheet may run: one that starts with a tab or a line break (OWASP), or whose first
# character past any whitespace (spreadsheets trim it) is a formula sign, ASCII or full-width (an
# East Asian input method types those, and spreadsheets take them as the ASCII ones).
_FORMULA_SIGNS = "=+-@＝＋－＠"
_RUNS_AT_ONCE = frozenset(_FORMULA_SIGNS + "\t\r\n")
_SIGN_PAST_WHITESPACE = re.compile(rf"\s*[{re.escape(_FORMULA_SIGNS)}]")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet will show as text, never evaluate (OWASP's CSV injection advice): the
    text itself, or ``'`` and the text — nothing else in it changes."""
    first = cell[:1]  # one set lookup decides most cells; the pattern runs only after whitespace
    if first in _RUNS_AT_ONCE or (first.isspace() and _SIGN_PAST_WHITESPACE.match(cell)):
        return "'" + cell
    return cell


class CsvRows:
    def __init__(self, sink: TextIO, session: SessionRecord, positions: dict[int, int]) -> None:
        self._writer = csv.writer(sink, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        self._anonymous = session.anonymous
        self._channels = ExportChannels(session)
        self._positions = positions
        self._closed = session.closed_at
        self._writer.writerow(CSV_COLUMNS)

    def write(self, reply: ReplyRecord) -> None:
        anonymous = self._anonymous
        when = iso_seconds if anonymous else iso
        self._writer.writerow(
            (
                reply.id,
                self._positions.get(reply.prompt_id, ""),
                reply.prompt_id,
                when(reply.created_at),
                when(reply.edited_at) or "",
                "" if anonymous else neutralise(reply.author_name),
                "" if anonymous else neutralise(reply.author_id),
                reply.reactions,
                reply.edits,
                neutralise(reply.platform),
                neutralise(self._channels(reply.platform, reply.channel_id)),
                "" if anonymous else neutralise(reply.channel_id),
                "" if anonymous else neutralise(reply.message_id),
                neutralise(reply.text),
                "late" if self._closed is not None and reply.created_at > self._closed else "",
            )
        )
