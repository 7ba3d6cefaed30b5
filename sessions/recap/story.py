"""The day's story as data: everything the recap message, the article, the chart and the exports
say, gathered once per recap with bounded memory.

Counting (replies, people, reactions, time bins) is done by SQLite; Python only sees each prompt's
best replies (:mod:`sessions.recap.ranking`), at most :data:`ARTICLE_LIMIT` of them per prompt,
so the cost of a recap grows with the number of prompts, not with the number of replies.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sessions.channels import channel_homes, home_of, platform_label, where
from sessions.compose import local_time
from sessions.model import ChannelRef
from sessions.recap.ranking import RankedReply, rank_prompt
from sessions.recap.themes import (
    PROMPT_THEMES,
    Corpus,
    DayTheme,
    Theme,
    ThemeSample,
    choose_themes,
    day_themes,
    keyphrases,
    sample_texts,
    word_budget,
)
from sessions.records import (
    LinkedVoices,
    Participation,
    PeopleWhoWrote,
    PromptRecord,
    PromptState,
    SessionRecord,
)
from sessions.store import RecapQueries, Store, recap_queries

_log = logging.getLogger(__name__)

# Replies per prompt in the article; the exports hold every one. A prompt of a community's day
# rarely draws more, so nearly every article is whole; past it the article is a reading of the best
# liked (it says how many more there are), not a 4 MB page that nobody reads to the end.
ARTICLE_LIMIT = 500
HIGHLIGHTS = 3  # quoted per prompt in the recap message
_MAX_BINS = 48
# Bin widths for "replies across the day", in seconds: seconds for a compressed demo session,
# hours for a real day.
_WIDTHS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptStory:
    prompt: PromptRecord
    replies: int
    participants: int
    reactions: int
    ranked: tuple[RankedReply, ...]  # the best replies, best first (at most ARTICLE_LIMIT)
    shown: tuple[RankedReply, ...]  # the same replies in the order they were posted
    themes: tuple[Theme, ...]
    themes_from: int  # replies read for this prompt's themes

    @property
    def highlights(self) -> tuple[RankedReply, ...]:
        return self.ranked[:HIGHLIGHTS]

    @property
    def hidden(self) -> int:
        """Replies the article leaves to the exports."""
        return self.replies - len(self.shown)

    @property
    def missed(self) -> bool:
        return self.prompt.state is PromptState.MISSED

    @property
    def skipped(self) -> bool:
        return self.prompt.state is PromptState.SKIPPED

    @property
    def reached(self) -> bool:
        """Posted (or answered somehow): it gets a section of its own."""
        return not (self.missed or self.skipped) or self.replies > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Standing replies per prompt across the day, in bins aligned to the session's local clock."""

    origin: datetime  # UTC start of the first bin
    width: timedelta
    labels: tuple[str, ...]  # each bin's local start time
    counts: tuple[tuple[int, ...], ...]  # per prompt (timetable order), per bin

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(sum(column) for column in zip(*self.counts, strict=True)) if self.counts else ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStory:
    """One channel the day ran in, and what was said there."""

    channel: ChannelRef
    name: str | None  # as its adapter told it when it joined ("#learning"); None if it could not
    replies: int
    people: int
    reactions: int
    left: bool = False  # it left the session before the end (its replies stay)

    @property
    def where(self) -> str:
        """``#learning on Slack`` (the channel id where no name is known)."""
        return where(self.channel, self.name)

    @property
    def platform(self) -> str:
        return platform_label(self.channel.platform)


@dataclass(frozen=True, slots=True, kw_only=True)
class Story:
    session: SessionRecord
    prompts: tuple[PromptStory, ...]  # every prompt, in timetable order
    replies: int
    participants: int
    reactions: int
    per_participant: tuple[PeopleWhoWrote, ...]  # (replies written, people who wrote that many), ascending
    timeline: Timeline
    themes: tuple[DayTheme, ...]
    theme_sample: ThemeSample
    labels: Mapping[int, str]  # reply id -> "2.14": prompt 2, 14th reply shown under it
    # Sessions across channels and platforms: every channel the day ran in (in the order they
    # joined; empty figures for a one-channel day, whose figures are the day's), the members who
    # linked their identities across platforms (counted once), and where each reply was written.
    channels: tuple[ChannelStory, ...] = ()
    linked: tuple[LinkedVoices, ...] = ()
    homes: Mapping[tuple[str, str], ChannelRef] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return self.session.anonymous

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms the day ran on, by name ("Discord", "Slack")."""
        return tuple(sorted({c.platform for c in self.channels}))

    @property
    def across_channels(self) -> bool:
        return len(self.channels) > 1

    def channel_of(self, reply: RankedReply) -> ChannelStory | None:
        """The session channel a reply was written in (its thread's channel on Discord)."""
        if not reply.platform:
            return None
        home = home_of(self.homes, reply.platform, reply.channel_id)
        return next((c for c in self.channels if c.channel == home), None)

    def where_from(self, reply: RankedReply) -> str:
        """"#learning on Slack" for a reply of a day across channels; "" otherwise, and always in an
        anonymous session (where a voice came from narrows down who it is)."""
        if self.anonymous or not self.across_channels:
            return ""
        found = self.channel_of(reply)
        return found.where if found else ""

    def is_late(self, reply: RankedReply) -> bool:
        """Written after the recap was posted: kept, and marked late wherever it is shown."""
        closed = self.session.closed_at
        return closed is not None and reply.created_at > closed

    @property
    def truncated(self) -> bool:
        return any(p.hidden for p in self.prompts)

    def prompt_by_id(self, prompt_id: int) -> PromptStory:
        for p in self.prompts:
            if p.prompt.id == prompt_id:
                return p
        raise KeyError(prompt_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """What SQLite counted, before any reply is read: enough for the chart."""

    prompts: tuple[PromptRecord, ...]  # timetable order
    timeline: Timeline
    totals: Mapping[int, tuple[int, int]]  # prompt id -> (standing replies, their reactions)

    def replies(self, prompt_id: int) -> int:
        return self.totals.get(prompt_id, (0, 0))[0]


async def gather_story(
    store: Store,
    session: SessionRecord,
    *,
    limit: int = ARTICLE_LIMIT,
    on_counts: Callable[[Counts], object] | None = None,
) -> Story:
    """The story of ``session``; ``on_counts`` is called with the counts as soon as they are known
    (the recap starts drawing its chart then, while the themes are still being found).

    ``store`` must answer the recap's queries too (:class:`sessions.store.RecapQueries`), as
    every Popup store does; the engine and the exports know it only as a :class:`Store`."""
    queries = recap_queries(store)
    prompts = await store.prompts(session.id)
    rankings: list[tuple[PromptRecord, tuple[RankedReply, ...]]] = []
    for prompt in prompts:
        # Every prompt is asked (nothing is counted yet): one without standing replies costs an
        # index probe and ranks none.
        rankings.append((prompt, (await rank_prompt(queries, session.id, prompt.id, limit)).replies))
    # Keyphrases and phrase matching are CPU work: off the event loop, so the bot keeps answering
    # (Slack wants an ack within 3 s) while a big recap is built. Meanwhile SQLite counts, in the
    # store's thread and outside the GIL: the two overlap rather than follow each other. Ranking
    # first and counting after keeps the long counting queries from holding up the ranking's.
    theming = asyncio.ensure_future(asyncio.to_thread(_themes, rankings))
    try:
        timeline, totals = await _timeline(queries, session, prompts)
        if on_counts is not None:
            on_counts(Counts(prompts=tuple(prompts), timeline=timeline, totals=totals))
        participation = await queries.recap_participants(session.id)
        linked = tuple(await store.linked_voices(session.id))
        participation = _count_linked_once(participation, linked)
        homes, channel_stories = await _channels(store, session)
        per_prompt, day = await theming
    finally:
        if not theming.done():
            # A thread cannot be stopped: let it finish, and its result (or error) go.
            theming.add_done_callback(_discard)
    prompt_stories: list[PromptStory] = []
    labels: dict[int, str] = {}
    for (prompt, ranked), found in zip(rankings, per_prompt, strict=True):
        shown = tuple(sorted(ranked, key=lambda r: (r.created_at, r.id)))
        for index, reply in enumerate(shown, start=1):
            labels[reply.id] = f"{prompt.position}.{index}"
        replies, reactions = totals.get(prompt.id, (0, 0))
        prompt_stories.append(
            PromptStory(
                prompt=prompt,
                replies=replies,
                participants=participation.people_per_prompt.get(prompt.id, 0),
                reactions=reactions,
                ranked=ranked,
                shown=shown,
                themes=found.themes,
                themes_from=found.read,
            )
        )
    replies = sum(p.replies for p in prompt_stories)
    return Story(
        session=session,
        prompts=tuple(prompt_stories),
        replies=replies,
        participants=participation.people,
        reactions=sum(p.reactions for p in prompt_stories),
        per_participant=participation.distribution,
        timeline=timeline,
        themes=day,
        theme_sample=ThemeSample(replies=sum(found.read for found in per_prompt), of=replies),
        labels=labels,
        channels=channel_stories,
        linked=linked,
        homes=homes,
    )


async def _channels(
    store: Store, session: SessionRecord
) -> tuple[dict[tuple[str, str], ChannelRef], tuple[ChannelStory, ...]]:
    """Every channel the day ran in, with its figures when there is more than one."""
    posts = await store.posts(session.id)
    homes = channel_homes(posts)
    joined = await store.session_channels(session.id)
    names = {c.channel: c.name for c in joined}
    order = [c.channel for c in joined]
    for post in posts:  # channels that left the session keep their place in the story
        if post.channel not in order:
            order.append(post.channel)
    if len(order) <= 1:
        return homes, tuple(ChannelStory(channel=c, name=names.get(c), replies=0, people=0, reactions=0) for c in order)
    figures = {f.channel: f for f in await store.channel_figures(session.id)}
    for channel in figures:
        if channel not in order:
            order.append(channel)
    stories = []
    for channel in order:
        counted = figures.get(channel)
        stories.append(
            ChannelStory(
                channel=channel,
                name=names.get(channel),
                replies=counted.replies if counted else 0,
                people=counted.people if counted else 0,
                reactions=counted.reactions if counted else 0,
                left=channel not in session.channels,
            )
        )
    return homes, tuple(stories)


def _count_linked_once(participation: Participation, linked: Sequence[LinkedVoices]) -> Participation:
    """Each member who linked identities across platforms counted as one person: in the day's
    total and distribution, and under each prompt more than one of their identities answered."""
    if not linked:
        return participation
    shares = {share.replies: share.people for share in participation.distribution}
    per_prompt = dict(participation.people_per_prompt)
    for voices in linked:
        for _, _, replies in voices.identities:
            shares[replies] -= 1
        total = sum(replies for _, _, replies in voices.identities)
        shares[total] = shares.get(total, 0) + 1
        for prompt_id in voices.shared_prompts:
            if per_prompt.get(prompt_id, 0) > 1:
                per_prompt[prompt_id] -= 1
    return Participation(
        people_per_prompt=per_prompt,
        distribution=tuple(PeopleWhoWrote(replies=n, people=k) for n, k in sorted(shares.items()) if k > 0),
    )


def _discard(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True, slots=True)
class _PromptThemes:
    corpus: Corpus
    themes: tuple[Theme, ...]
    read: int


def _themes(
    rankings: Sequence[tuple[PromptRecord, tuple[RankedReply, ...]]],
) -> tuple[list[_PromptThemes], tuple[DayTheme, ...]]:
    budget = word_budget(sum(1 for _, ranked in rankings if ranked))
    samples = [sample_texts(ranked, budget) for _, ranked in rankings]
    found = [keyphrases(texts, PROMPT_THEMES) if texts else [] for texts in samples]
    # Every candidate's words, so one pass per prompt indexes what both the prompt's and the
    # day's themes will look up.
    words = {w for phrases in found for phrase, _ in phrases for w in phrase.split()}
    per_prompt: list[_PromptThemes] = []
    for (_, ranked), phrases, texts in zip(rankings, found, samples, strict=True):
        corpus = Corpus.of(ranked, words)
        per_prompt.append(_PromptThemes(corpus=corpus, themes=choose_themes(phrases, corpus), read=len(texts)))
    day = day_themes(
        [tuple(phrase for phrase, _ in phrases) for phrases in found],
        [(prompt.id, p.corpus) for (prompt, _), p in zip(rankings, per_prompt, strict=True)],
    )
    return per_prompt, day


async def _timeline(
    queries: RecapQueries, session: SessionRecord, prompts: Sequence[PromptRecord]
) -> tuple[Timeline, dict[int, tuple[int, int]]]:
    """The day's timeline, and each prompt's (replies, reactions) counted on the way."""
    tz = ZoneInfo(session.timezone)
    start = session.started_at
    last = await queries.recap_last_reply_at(session.id)
    end = max(last, start) if last else start
    span = max((end - start).total_seconds(), 1.0)
    width = next((w for w in _WIDTHS if span / w <= _MAX_BINS), _WIDTHS[-1])
    # Align bins to the local clock (09:00, 09:15, …) whatever the zone's offset.
    local = start.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    into_day = (local - midnight).total_seconds()
    origin = (midnight + timedelta(seconds=width * math.floor(into_day / width))).astimezone(UTC)
    bins = max(1, math.floor((end - origin).total_seconds() / width) + 1)
    index = {p.id: i for i, p in enumerate(prompts)}
    counts = [[0] * bins for _ in prompts]
    totals: dict[int, tuple[int, int]] = {}
    for time_bin in await queries.recap_time_bins(session.id, origin, float(width)):
        replies, liked = totals.get(time_bin.prompt_id, (0, 0))
        totals[time_bin.prompt_id] = (replies + time_bin.replies, liked + time_bin.reactions)
        if time_bin.prompt_id in index:
            # A reply stamped before the session began (clock skew) still counts, in the first bin.
            counts[index[time_bin.prompt_id]][min(max(time_bin.bin, 0), bins - 1)] += time_bin.replies
    labels = tuple(local_time(origin + timedelta(seconds=width * i), session.timezone) for i in range(bins))
    timeline = Timeline(
        origin=origin,
        width=timedelta(seconds=width),
        labels=labels,
        counts=tuple(tuple(row) for row in counts),
    )
    return timeline, totals
