"""The story's draft as Markdown and as HTML, every part escaped.

A quote is rendered as “its span” followed by its attribution in parentheses: the name and, when
the session has several channels, the channel. Text and names pass :func:`md_escape` (Markdown)
or :func:`markupsafe.escape` (HTML), like every member-written value of the article.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

from sessions.recap.narrative.draft import Draft, Paragraph, Quote
from sessions.recap.narrative.grounding import Voice


def _attribution(quote: Quote, voices: Mapping[int, Voice]) -> str:
    voice = voices.get(quote.reply_id) if quote.reply_id is not None else None
    parts = [p for p in (quote.by or "", voice.channel if voice else "") if p]
    return ", ".join(parts)


def _paragraph(
    paragraph: Paragraph,
    voices: Mapping[int, Voice],
    text: Callable[[str], str],
    quoted: Callable[[str, str], str],
) -> str:
    out: list[str] = []
    for segment in paragraph:
        if isinstance(segment, Quote):
            out.append(quoted(segment.text, _attribution(segment, voices)))
        else:
            out.append(text(segment))
    return "".join(out).strip()


def story_markdown(
    draft: Draft, voices: Mapping[int, Voice], escape_md: Callable[[object], str], *, asked: Sequence[str] = ()
) -> str:
    """The story's sections as Markdown (``##`` headings), ending in a blank line; ``asked`` (the
    prompts) is listed after the opening section."""

    def quoted(span: str, who: str) -> str:
        body = f"“{escape_md(span)}”"
        return f"{body} ({escape_md(who)})" if who else body

    blocks: list[str] = []
    for number, section in enumerate(draft.sections, start=1):
        blocks.append(f"## {escape_md(' '.join(section.heading.split()))}")
        for paragraph in section.paragraphs:
            blocks.append(_paragraph(paragraph, voices, lambda s: escape_md(s), quoted))
        if number == 1 and asked:
            blocks.append("The day asked:")
            blocks.append("\n".join(f"{i}. {escape_md(' '.join(text.split()))}" for i, text in enumerate(asked, 1)))
    return "\n\n".join(blocks) + "\n\n"


def story_html(
    draft: Draft, voices: Mapping[int, Voice], anchors: Mapping[int, str], *, asked: Sequence[str] = ()
) -> Markup:
    """The story's sections as HTML: one ``<section>`` each, quotes linked to their reply in the
    record when ``anchors`` has it (reply id -> the record's element id)."""
    blocks: list[str] = []
    for number, section in enumerate(draft.sections, start=1):
        parts = [f'<section class="story-part" id="story-{number}">\n<h2>{escape(section.heading)}</h2>']
        for paragraph in section.paragraphs:
            parts.append(f"<p>{_html_paragraph(paragraph, voices, anchors)}</p>")
        if number == 1 and asked:
            items = "".join(f'<li dir="auto">{escape(text)}</li>' for text in asked)
            parts.append(f'<p>The day asked:</p>\n<ol class="asked">{items}</ol>')
        blocks.append("\n".join(parts) + "\n</section>")
    return Markup("\n".join(blocks) + "\n")


def _html_paragraph(paragraph: Paragraph, voices: Mapping[int, Voice], anchors: Mapping[int, str]) -> str:
    out: list[str] = []
    for segment in paragraph:
        if not isinstance(segment, Quote):
            out.append(str(escape(segment)))
            continue
        who = _attribution(segment, voices)
        body = f'<q dir="auto">{escape(segment.text)}</q>'
        anchor = anchors.get(segment.reply_id) if segment.reply_id is not None else None
        if anchor:
            body = f'<a class="quote" href="#{anchor}">{body}</a>'
        out.append(body + (f' <span class="who">(<bdi>{escape(who)}</bdi>)</span>' if who else ""))
    return "".join(out).strip()
