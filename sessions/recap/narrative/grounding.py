"""The grounding check: a story is published only if nothing in it is invented.

Its messages say what is wrong, never whose words or which (they go to the log).

:func:`check` refuses (:class:`Ungrounded`, naming the first problem) a draft in which

* a quote is not a verbatim span of a standing reply (among the replies the story read);
* a quote is attributed to someone who did not write such a reply (in an anonymous session: a
  quote is attributed to anyone at all);
* the prose holds quotation marks: every quotation must be a :class:`~.draft.Quote`, which is
  checked, never text that looks like one;
* the prose or a heading holds a number, in digits or as an English number word ("twelve"), that
  is not one of the numbers computed for the story (:attr:`Facts.numbers`);
* in an anonymous session, the prose names a member;
* a voice the story must give (:attr:`Facts.voices_due`) appears nowhere, named or quoted;
* it is empty, or longer than :attr:`Facts.max_words`.

The offline draft passes by construction (the tests check it does); a writer model's draft passes
or is thrown away (:mod:`.rewrite`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sessions.errors import PopupError
from sessions.recap.narrative.draft import Draft, Paragraph, Quote, Section, Segment


class Ungrounded(PopupError):
    """A draft says something the day did not: the message says what."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Voice:
    """One reply as the story knows it."""

    id: int
    prompt: int  # the prompt's position in the timetable
    author: str  # display name
    channel: str  # how to name its channel in an attribution; "" when the session has one channel
    text: str
    reactions: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    voices: Mapping[int, Voice]  # reply id -> the reply
    numbers: frozenset[int]  # every number the story may state
    anonymous: bool
    voices_due: frozenset[str]  # names that must appear (empty in an anonymous session)
    max_words: int


_QUOTE_MARKS = re.compile(r"[\"“”„«»‟〝〞＂]")
_DIGITS = re.compile(r"\d[\d,]*(?:\.\d+)?")
_NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100}
_WORDS = re.compile(r"[A-Za-z]+")
_ALWAYS = frozenset({1})  # "one voice", "no one": the article may always say one


def check(draft: Draft, facts: Facts) -> Draft:
    """``draft`` with every quote tied to its reply (``reply_id``), or :class:`Ungrounded`."""
    if not draft.sections or not any(section.paragraphs for section in draft.sections):
        raise Ungrounded("the draft is empty")
    words = draft.words()
    if words > facts.max_words:
        raise Ungrounded(f"the draft has {words} words; at most {facts.max_words}")
    by_author: dict[str, list[Voice]] = {}
    for voice in facts.voices.values():
        by_author.setdefault(voice.author, []).append(voice)
    names = {v.author for v in facts.voices.values() if len(v.author) >= 3}
    # A name may hold digits ("Member 191"); naming someone states no number.
    numbered = sorted({v.author for v in facts.voices.values() if any(c.isdigit() for c in v.author)}, key=len)[::-1]
    seen_names: set[str] = set()
    prose: list[str] = []
    sections: list[Section] = []
    for section in draft.sections:
        heading = section.heading.strip()
        if not heading or "\n" in heading or len(heading) > 120:
            raise Ungrounded("a heading is empty, several lines or too long")
        _check_text(heading, facts, names, numbered)
        prose.append(heading)
        paragraphs: list[Paragraph] = []
        for paragraph in section.paragraphs:
            segments: list[Segment] = []
            for segment in paragraph:
                if isinstance(segment, Quote):
                    resolved = _resolve(segment, facts, by_author)
                    if resolved.by:
                        seen_names.add(resolved.by)
                    segments.append(resolved)
                else:
                    _check_text(segment, facts, names, numbered)
                    prose.append(segment)
                    segments.append(segment)
            paragraphs.append(tuple(segments))
        sections.append(Section(heading=heading, paragraphs=tuple(paragraphs)))
    if facts.voices_due:
        text = "\n".join(prose)
        missing = sorted(n for n in facts.voices_due if n not in seen_names and not _names_in(n, text))
        if missing:
            raise Ungrounded(f"{len(missing)} of the voices of the day appear nowhere")
    return Draft(sections=tuple(sections))


def _resolve(quote: Quote, facts: Facts, by_author: Mapping[str, list[Voice]]) -> Quote:
    span = quote.text
    if not span.strip():
        raise Ungrounded("an empty quote")
    if facts.anonymous:
        if quote.by:
            raise Ungrounded("a quote is attributed to someone in an anonymous session")
        pool: list[Voice] = list(facts.voices.values())
    else:
        if not quote.by:
            raise Ungrounded("a quote without attribution")
        pool = by_author.get(quote.by, [])
    hinted = facts.voices.get(quote.reply_id) if quote.reply_id is not None else None
    if hinted is not None and hinted in pool and span in hinted.text:
        return quote
    for voice in sorted(pool, key=lambda v: v.id):
        if span in voice.text:
            return replace(quote, reply_id=voice.id)
    if not facts.anonymous and any(span in v.text for v in facts.voices.values()):
        raise Ungrounded("a quote is attributed to someone who did not say it")
    raise Ungrounded("a quote that nobody said")


def _check_text(text: str, facts: Facts, names: set[str], numbered: list[str]) -> None:
    if _QUOTE_MARKS.search(text):
        raise Ungrounded("quotation marks outside a quote")
    counted = text
    if numbered and _DIGITS.search(text):
        for name in numbered:  # longest first, so "Member 19" does not leave the 1 of "Member 191"
            if name in counted:
                counted = counted.replace(name, " ")
    for match in _DIGITS.finditer(counted):
        raw = match.group().rstrip(",")
        value = raw.replace(",", "")
        if "." in value or int(value) not in facts.numbers | _ALWAYS:
            raise Ungrounded(f"a number that was not computed: {raw}")
    for word in _WORDS.findall(text):
        value_of = _NUMBER_WORDS.get(word.lower())
        if value_of is not None and value_of not in facts.numbers | _ALWAYS:
            raise Ungrounded(f"a number that was not computed: {word}")
    if facts.anonymous:
        for name in names:
            if _names_in(name, text):
                raise Ungrounded("the prose names a member in an anonymous session")


def _names_in(name: str, text: str) -> bool:
    """``name`` in ``text`` as a whole (not inside a longer word)."""
    start = text.find(name)
    while start >= 0:
        end = start + len(name)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or after.isalnum()):
            return True
        start = text.find(name, start + 1)
    return False
