"""What the JSON and the CSV export write alike: moments, and what a reply's channel is called
(in an anonymous session, a stand-in: see "Anonymous sessions" in :mod:`sessions.recap.exports`)."""

from __future__ import annotations

from datetime import datetime

from sessions.records import SessionRecord


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def iso_seconds(moment: datetime | None) -> str | None:
    """The moment to the second: finer, it can be a platform's message id (see :mod:`sessions.recap.exports`)."""
    return None if moment is None else moment.replace(microsecond=0).isoformat()


class ExportChannels:
    """What an export calls a reply's channel: its id, or in an anonymous session a stand-in
    (``channel-1``…) numbered by the session's channels, then by first appearance."""

    __slots__ = ("_anonymous", "_names")

    def __init__(self, session: SessionRecord) -> None:
        self._anonymous = session.anonymous
        self._names: dict[tuple[str, str], str] = {}
        for channel in session.channels:
            self(channel.platform, channel.channel_id)

    def __call__(self, platform: str, channel_id: str) -> str:
        if not self._anonymous:
            return channel_id
        name = self._names.get((platform, channel_id))
        if name is None:
            name = self._names[(platform, channel_id)] = f"channel-{len(self._names) + 1}"
        return name
