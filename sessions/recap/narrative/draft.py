"""The story as a draft: sections of paragraphs, each paragraph plain text and quotes.

A quote is never free text: it is a :class:`Quote` (the span, and who said it), so the grounding
check (:mod:`.grounding`) can hold every quote to a reply, and the renderers can escape every part.
The same shape travels to a writer model and back as JSON::

    {"sections": [{"heading": "Time to learn",
                   "paragraphs": [["12 people spoke to this. ", {"quote": "Deadlines.", "by": "Sven"}, "."]]}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sessions.errors import PopupError


class DraftError(PopupError):
    """A draft (usually a writer model's answer) is not in the draft's shape; says where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    text: str  # a verbatim span of one reply
    by: str | None  # the author's display name; None in an anonymous session
    reply_id: int | None = None  # which reply: set by the offline writer and by the grounding check


Segment = str | Quote
Paragraph = tuple[Segment, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    heading: str
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    sections: tuple[Section, ...]

    def quotes(self) -> list[Quote]:
        return [s for sec in self.sections for p in sec.paragraphs for s in p if isinstance(s, Quote)]

    def words(self) -> int:
        total = 0
        for section in self.sections:
            total += len(section.heading.split())
            for paragraph in section.paragraphs:
                total += sum(len((s.text if isinstance(s, Quote) else s).split()) for s in paragraph)
        return total

    def to_json(self, *, with_ids: bool = False) -> dict[str, Any]:
        def segment(s: Segment) -> Any:
            if isinstance(s, str):
                return s
            item: dict[str, Any] = {"quote": s.text, "by": s.by}
            if with_ids:
                item["reply_id"] = s.reply_id
            return item

        return {
            "sections": [
                {"heading": sec.heading, "paragraphs": [[segment(s) for s in p] for p in sec.paragraphs]}
                for sec in self.sections
            ]
        }

    @classmethod
    def from_json(cls, data: Any) -> Draft:
        """The draft in ``data`` (parsed JSON); :class:`DraftError` if it is not a draft."""
        if not isinstance(data, Mapping) or not isinstance(data.get("sections"), list):
            raise DraftError('expected an object with a "sections" list')
        sections: list[Section] = []
        for i, raw in enumerate(data["sections"]):
            if not isinstance(raw, Mapping):
                raise DraftError(f"sections[{i}]: expected an object")
            heading = raw.get("heading")
            paragraphs = raw.get("paragraphs")
            if not isinstance(heading, str) or not isinstance(paragraphs, list):
                raise DraftError(f'sections[{i}]: expected "heading" (text) and "paragraphs" (a list)')
            sections.append(Section(heading=heading, paragraphs=tuple(_paragraph(p, i) for p in paragraphs)))
        return cls(sections=tuple(sections))


def _paragraph(raw: Any, section: int) -> Paragraph:
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, Sequence):
        raise DraftError(f"sections[{section}]: a paragraph must be a list of text and quotes")
    segments: list[Segment] = []
    for item in raw:
        if isinstance(item, str):
            segments.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("quote"), str):
            by = item.get("by")
            if by is not None and not isinstance(by, str):
                raise DraftError(f'sections[{section}]: a quote\'s "by" must be a name or null')
            reply_id = item.get("reply_id")
            segments.append(
                Quote(text=item["quote"], by=by or None, reply_id=reply_id if isinstance(reply_id, int) else None)
            )
        else:
            raise DraftError(f'sections[{section}]: a segment must be text or {{"quote": ..., "by": ...}}')
    return tuple(segments)
