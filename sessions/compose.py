"""What the bot says: the opening message, each prompt, status and notices, as neutral Messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sessions.channels import where
from sessions.model import ChannelRef, Message, Quote, Section
from sessions.records import ChannelFigures, PromptRecord, PromptState, SessionRecord, SessionStats


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def local_time(moment: datetime, tz: str) -> str:
    """``09:30`` in the session's zone; with seconds when they matter (offset plans like "+20s")."""
    local = moment.astimezone(ZoneInfo(tz))
    return local.strftime("%H:%M:%S" if local.second else "%H:%M")


def local_day(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%A %d %B %Y")


def opening(session: SessionRecord, prompts: Sequence[PromptRecord]) -> Message:
    tz = session.timezone
    timetable = [f"{local_time(p.due_at, tz)}  {p.position}. {p.text}" for p in prompts]
    timetable.append(f"{local_time(session.recap_at, tz)}  Recap of the day")
    how = (
        "Each prompt arrives here at its time and opens a thread: answer in the thread, whenever "
        "you like today. React to the replies you like; the recap at the end of the day gathers "
        "what we said."
    )
    if session.anonymous:
        how += " This session is anonymous: no names appear in the recap or its artifacts."
    return Message(
        title=f"Popup learning session: {session.title}",
        body=session.intro,
        sections=(
            Section(heading=f"Timetable ({local_day(session.started_at, tz)}, {tz})", lines=tuple(timetable)),
            Section(heading="How it works", lines=(how,)),
        ),
    )


def prompt(session: SessionRecord, record: PromptRecord, total: int) -> Message:
    return Message(
        title=f"Prompt {record.position} of {total}",
        body=record.text,
        sections=(Section(lines=("Reply in this thread.",)),),
    )


def status(session: SessionRecord, prompts: Sequence[PromptRecord], stats: SessionStats) -> str:
    tz = session.timezone
    posted = sum(1 for p in prompts if p.state is PromptState.POSTED)
    upcoming = next((p for p in prompts if p.state is PromptState.PENDING), None)
    parts = [
        f"Session #{session.id} “{session.title}” ({session.plan_name}) is {session.state.value}.",
        f"Prompts posted: {posted} of {len(prompts)}.",
    ]
    if upcoming is not None:
        parts.append(f"Next: prompt {upcoming.position} at {local_time(upcoming.due_at, tz)}.")
    parts.append(f"Recap at {local_time(session.recap_at, tz)}.")
    parts.append(
        f"So far: {plural(stats.replies, 'reply', 'replies')} from {plural(stats.participants, 'person', 'people')}."
    )
    return " ".join(parts)


def cancelled(session: SessionRecord) -> Message:
    return Message(body=f"The popup session “{session.title}” was cancelled. Thank you for being here.")


def outage(session: SessionRecord, channel: ChannelRef, name: str | None) -> Message:
    """The organiser's one notice that a channel of the session cannot be posted in."""
    return Message(
        body=f"Popup cannot post in {where(channel, name)} for the session “{session.title}” right now. "
        "The other channels go on meanwhile, and that channel gets what it missed once it can be "
        "posted in again: check that the bot is still there and allowed to post."
    )


def channel_lines(
    channels: Sequence[ChannelRef], figures: Mapping[ChannelRef, ChannelFigures], names: Mapping[ChannelRef, str]
) -> tuple[str, ...]:
    """A line per channel: where it is and what it has said so far."""
    lines = []
    for channel in channels:
        counted = figures.get(channel)
        replies = counted.replies if counted else 0
        people = counted.people if counted else 0
        lines.append(
            f"{where(channel, names.get(channel))}: {plural(replies, 'reply', 'replies')} "
            f"from {plural(people, 'person', 'people')}"
        )
    return tuple(lines)


def pulse(
    session: SessionRecord,
    *,
    replies: int,
    channel_lines: Sequence[str],
    heard: Sequence[Quote],
) -> Message:
    """The mid-day digest a channel gets: the day so far per channel, and voices from the others."""
    sections = [Section(heading="Replies so far", lines=tuple(channel_lines))]
    if heard:
        sections.append(Section(heading="Heard in the other channels", quotes=tuple(heard)))
    body = f"Half-way through “{session.title}”: {plural(replies, 'reply', 'replies')} so far, " + (
        f"across {plural(len(channel_lines), 'channel', 'channels')}."
    )
    return Message(title="Pulse of the day", body=body, sections=tuple(sections))
