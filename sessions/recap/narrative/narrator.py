"""The offline writer: the day's story as a draft, from the themes and the members' own words.

Nothing here is generated text about what people meant: the prose is a frame of counts (every one
computed, and added to :attr:`Facts.numbers`) and of plain connectives, and the substance is quoted.
Per theme it walks the day prompt by prompt (one to three quotes for each prompt the theme ran
through, the most central replies of distinct people first), then gives a reply that took another
view (one that says "but", "instead", "aber", "pero"…) and a question left open (a sentence
ending in "?"), then names the people of the theme not yet quoted. The closing gathers the
proposals (replies that say "should", "let's", "sollten", "deberíamos"… or answer a prompt that
looks ahead) and the open questions, and names everyone not yet named.

Size follows the day: a theme gets as many points as prompts it ran through, each with as many
quotes as it has replies to spare (at most three), so a 14-reply day reads in a minute and a day of
150 replies comes to about two thousand words; past that, the caps (themes, quotes per point,
names) bound it whatever the size of the day.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sessions.recap.narrative.draft import Draft, Paragraph, Quote, Section, Segment
from sessions.recap.narrative.grounding import Facts, Voice

QUOTES_PER_POINT = 3
_SECOND_POINT_FROM = 4  # replies left under a prompt, after its first point, for a second one
_ANGLE_FROM = 8  # replies in a theme from which one far from its centre is quoted as another angle
PROPOSALS = 6
OPEN_QUESTIONS = 3
NAMES_LISTED = 300  # beyond, "and N more": every voice appears on any ordinary day
SPAN_CHARS = 240
_SMALL = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # said as words
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth".split()

_CONTRAST = re.compile(
    r"\b(but|however|although|though|instead|disagree|unless|not sure|on the other hand|maar|toch|aber|doch|"
    r"jedoch|mais|pourtant|cependant|pero|sin embargo|aunque)\b",
    re.IGNORECASE,
)
# Said anywhere in a reply, these propose; so does a reply that opens with a verb of doing.
_PROPOSAL = re.compile(
    r"\b(should|let's|lets|propose|suggest|we need to|what if|laten we|zouden|moeten|sollten|lasst uns|"
    r"vorschlag|devrions|proposer|essayons|deberíamos|propongo|hagamos)\b",
    re.IGNORECASE,
)
_DOING = re.compile(
    r"^\W*(make|start|stop|keep|put|protect|block|reserve|rotate|pair|ask|write|share|celebrate|record|"
    r"delete|cancel|fix|invite|teach|post|count|end|decline)\b",
    re.IGNORECASE,
)
_FORWARD_PROMPT = re.compile(r"\b(change|try|habit|next|would|will|tomorrow|idea|could|wish|propose)\b", re.IGNORECASE)
# A question the reply asks (not one it reports: "she asked 'why?' and…").
_ASKS = re.compile(r"\?+(?:\s|$)")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ThemeInput:
    label: str
    reply_ids: tuple[int, ...]  # most central first


@dataclass(frozen=True, slots=True, kw_only=True)
class DayInput:
    """What the narrator needs to know of the day, all of it computed."""

    prompts: tuple[tuple[int, str, int], ...]  # (position, text, replies), timetable order
    participants: int
    replies: int
    reactions: int
    channels: int
    platforms: tuple[str, ...]  # display names, e.g. ("Slack", "Discord")
    anonymous: bool
    sampled: int  # replies the story read (the most liked of each prompt)


class _Numbers:
    """Numbers as the prose states them, each one remembered for the grounding check."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def __call__(self, n: int) -> str:
        self.seen.add(n)
        return _SMALL[n] if 0 < n < len(_SMALL) else f"{n:,}"

    def digits(self, n: int) -> str:
        self.seen.add(n)
        return f"{n:,}"

    def plural(self, n: int, one: str, many: str) -> str:
        return f"{self(n)} {one if n == 1 else many}"


def write(day: DayInput, themes: Sequence[ThemeInput], voices: Sequence[Voice]) -> tuple[Draft, Facts]:
    """The offline draft and the facts it rests on (the same facts check a model's draft)."""
    by_id = {v.id: v for v in voices}
    number = _Numbers()
    for position, _, count in day.prompts:
        number.seen.update((position, count))
    quoted: set[int] = set()
    named: set[str] = set()

    def quote(voice: Voice, focus: Callable[[str], object] | None = None) -> Quote:
        quoted.add(voice.id)
        named.add(voice.author)
        return Quote(text=_span(voice.text, focus), by=None if day.anonymous else voice.author, reply_id=voice.id)

    sections = [_opening(day, themes, number)]
    # The closing chooses first: its proposals are kept for it, not spent on the themes' points.
    closing = _closing(day, voices, themes, number, quote, quoted)
    for index, theme in enumerate(themes):
        members = [by_id[rid] for rid in theme.reply_ids if rid in by_id]
        sections.append(_theme_section(index, theme, members, day, number, quote, quoted))
    # Every voice, named or quoted: the people not yet named, in the theme they spoke to most.
    if not day.anonymous:
        theme_of: dict[str, int] = {}
        for index, theme in enumerate(themes):
            for rid in theme.reply_ids:
                voice = by_id.get(rid)
                if voice is not None and voice.author not in named:
                    theme_of.setdefault(voice.author, index)
        authors = list(dict.fromkeys(v.author for v in sorted(voices, key=lambda v: v.id) if v.author))
        unnamed = [a for a in authors if a not in named]
        listed = unnamed[:NAMES_LISTED]
        for index in range(len(themes)):
            people = [a for a in listed if theme_of.get(a) == index]
            if people:
                section = sections[index + 1]
                also = ("Also in this conversation: " + _and(people) + ".",)
                sections[index + 1] = Section(heading=section.heading, paragraphs=(*section.paragraphs, also))
        rest = [a for a in listed if a not in theme_of]
        more = len(unnamed) - len(listed)
        if rest or more:
            line = "Also with us today: " + _and(rest) if rest else "Also with us today"
            line += f", and {number.plural(more, 'other', 'others')}." if more else "."
            closing = Section(heading=closing.heading, paragraphs=(*closing.paragraphs, (line,)))
        named.update(listed)
        due = frozenset(named)
    else:
        due = frozenset()
    sections.append(closing)
    draft = Draft(sections=tuple(s for s in sections if s.paragraphs))
    facts = Facts(
        voices=by_id,
        numbers=frozenset(number.seen),
        anonymous=day.anonymous,
        voices_due=due,
        max_words=max(600, 2 * draft.words()),
    )
    return draft, facts


def _opening(day: DayInput, themes: Sequence[ThemeInput], number: _Numbers) -> Section:
    reached = [p for p in day.prompts if p[2]]
    first = (
        f"{number.plural(day.participants, 'person', 'people').capitalize()} answered the day's "
        f"{number.plural(len(day.prompts), 'prompt', 'prompts')} with {number.plural(day.replies, 'reply', 'replies')}"
    )
    if day.reactions:
        first += f" and gave them {number.plural(day.reactions, 'reaction', 'reactions')}"
    if day.channels > 1:
        first += f", from {number(day.channels)} channels on {_and(list(day.platforms))}"
    paragraphs: list[Paragraph] = [(first + ".",)]
    if len(reached) > 1:
        busiest = max(reached, key=lambda p: (p[2], -p[0]))
        paragraphs.append((f"Prompt {number.digits(busiest[0])} drew the most replies ({number.digits(busiest[2])}).",))
    if themes:
        labels = [t.label for t in themes]
        text = (
            f"Read together, the replies kept coming back to {number.plural(len(themes), 'idea', 'ideas')}: "
            f"{_and([label[0].lower() + label[1:] for label in labels])}. Each has a section below, told in "
            "the members' own words."
        )
        paragraphs.append((text,))
    elif day.replies:
        paragraphs.append(("The replies were too few or too varied for shared ideas to stand out.",))
    if day.sampled < day.replies:
        paragraphs.append(
            (
                f"On a day this large the story reads the {number(day.sampled)} most-liked replies; "
                "the record below and the exports hold every one.",
            )
        )
    return Section(heading="How the day went", paragraphs=tuple(paragraphs))


def _theme_section(
    index: int,
    theme: ThemeInput,
    members: Sequence[Voice],
    day: DayInput,
    number: _Numbers,
    quote: Callable[..., Quote],
    quoted: set[int],
) -> Section:
    people = len({m.author for m in members})
    positions = sorted({m.prompt for m in members})
    if len(positions) == 1:
        where = "prompt " + number.digits(positions[0])
    else:
        where = "prompts " + _and([number.digits(p) for p in positions])
    if day.anonymous:
        opener = f"This came up in {number.plural(len(members), 'reply', 'replies')}, under {where}."
    else:
        opener = (
            f"{number.plural(people, 'person', 'people').capitalize()} spoke to this in "
            f"{number.plural(len(members), 'reply', 'replies')}, under {where}."
        )
    paragraphs: list[Paragraph] = [(opener,)]
    liked = max(members, key=lambda m: (m.reactions, -m.id))
    if liked.reactions >= 2 and len(members) >= 4:
        reactions = number.plural(liked.reactions, "reaction", "reactions")
        paragraphs.append((f"The reply most liked here, with {reactions}: ", quote(liked), "."))
    for step, position in enumerate(positions):
        under = [m for m in members if m.prompt == position and m.id not in quoted]
        chosen = _distinct(under, _quotes_for(len(under)))
        if not chosen:
            continue
        paragraphs.append(_point(index + step, position, [quote(v) for v in chosen], step == 0))
        rest = [m for m in under if m.id not in quoted]
        if len(rest) >= _SECOND_POINT_FROM:
            more = _distinct(rest, 2)
            paragraphs.append(("Others added ", *_joined([quote(v) for v in more]), "."))
    other = _distinct([m for m in members if m.id not in quoted and _CONTRAST.search(m.text)], 1)
    if other:
        lead = ("Not everyone saw it the same way: ", "There was another view too: ")[index % 2]
        paragraphs.append((lead, quote(other[0], _CONTRAST.search), "."))
    elif len(members) >= _ANGLE_FROM:
        # The member farthest from the theme's centre says it most differently from the rest.
        far = _distinct([m for m in reversed(members) if m.id not in quoted and len(m.text.split()) >= 6], 1)
        if far:
            paragraphs.append(("From a different angle: ", quote(far[0]), "."))
    asked = _distinct([m for m in members if m.id not in quoted and _ASKS.search(m.text)], 1)
    if asked:
        paragraphs.append(("It left a question open: ", quote(asked[0], _ASKS.search)))
    return Section(heading=theme.label, paragraphs=tuple(paragraphs))


def _point(turn: int, position: int, quotes: list[Quote], first: bool) -> Paragraph:
    prompt = f"the {_ORDINALS[position - 1]} prompt" if position <= len(_ORDINALS) else f"prompt {position}"
    if first:
        leads = (
            f"It began under {prompt}: ",
            f"Under {prompt}, in the members' words: ",
            f"{prompt[0].upper()}{prompt[1:]} brought it out: ",
        )
    else:
        leads = (f"It came back under {prompt}: ", f"Under {prompt}: ", f"And again, under {prompt}: ")
    return (leads[turn % len(leads)], *_joined(quotes), ".")


def _joined(quotes: Sequence[Quote]) -> list[Segment]:
    segments: list[Segment] = []
    for i, q in enumerate(quotes):
        if i:
            segments.append(" and " if i == len(quotes) - 1 else ", ")
        segments.append(q)
    return segments


def _closing(
    day: DayInput,
    voices: Sequence[Voice],
    themes: Sequence[ThemeInput],
    number: _Numbers,
    quote: Callable[..., Quote],
    quoted: set[int],
) -> Section:
    forward = {p for p, text, _ in day.prompts if _FORWARD_PROMPT.search(text)}
    themed = {rid for t in themes for rid in t.reply_ids}
    ranked = sorted(voices, key=lambda v: (-v.reactions, v.id))

    def proposes(v: Voice) -> bool:
        return bool(_PROPOSAL.search(v.text) or (v.prompt in forward and _DOING.search(v.text)))

    # Proposals that belong to an idea of the day first (a joke rarely does), then any.
    candidates = [v for v in ranked if v.id not in quoted and proposes(v)]
    candidates.sort(key=lambda v: v.id not in themed)
    proposals = _distinct(candidates, PROPOSALS if day.replies >= 40 else 3)
    paragraphs: list[Paragraph] = []
    if proposals:
        segments: list[Segment] = ["What the community proposed to do: "]
        for i, v in enumerate(proposals):
            if i:
                segments.append("; " if i < len(proposals) - 1 else "; and ")
            segments.append(quote(v))
        segments.append(".")
        paragraphs.append(tuple(segments))
    questions = _distinct([v for v in ranked if v.id not in quoted and _ASKS.search(v.text)], OPEN_QUESTIONS)
    if questions:
        segments = ["Questions still open at the day's end: "]
        for i, v in enumerate(questions):
            if i:
                segments.append(" ")
            segments.append(quote(v, _ASKS.search))
        paragraphs.append(tuple(segments))
    if day.participants:
        people = "the one person" if day.participants == 1 else f"all {number(day.participants)} people"
        paragraphs.append((f"Thank you to {people} who took part.",))
    return Section(heading="What we take forward", paragraphs=tuple(paragraphs))


def _quotes_for(available: int) -> int:
    return min(QUOTES_PER_POINT, available, 1 if available <= 1 else 2 if available <= 3 else 3)


def _distinct(voices: Iterable[Voice], limit: int) -> list[Voice]:
    """Up to ``limit`` replies in the order given, one per person."""
    chosen: list[Voice] = []
    authors: set[str] = set()
    for voice in voices:
        if len(chosen) >= limit:
            break
        if voice.author in authors or not voice.text.strip():
            continue
        authors.add(voice.author)
        chosen.append(voice)
    return chosen


def _span(text: str, focus: Callable[[str], object] | None = None) -> str:
    """A verbatim span of ``text`` to quote: the whole reply when short, else the sentence that
    ``focus`` picks (or the first), cut at a word if it is still long. Never across a line break."""
    line = text.strip()
    if "\n" not in line and len(line) <= SPAN_CHARS and not (focus and not focus(line)):
        return _trim(line)
    sentences = [m.group().strip() for m in _SENTENCE.finditer(text) if m.group().strip()]
    pick = next((s for s in sentences if focus and focus(s)), sentences[0] if sentences else line.split("\n")[0])
    if len(pick) > SPAN_CHARS:
        cut = pick[:SPAN_CHARS]
        pick = cut[: cut.rfind(" ")] if " " in cut else cut
    return _trim(pick)


def _trim(span: str) -> str:
    """One closing full stop comes off (the sentence around the quote has its own)."""
    span = span.strip()
    return span[:-1] if span.endswith(".") and not span.endswith("..") and len(span) > 1 else span


def _and(items: Sequence[str]) -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]
