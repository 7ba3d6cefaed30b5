"""The mails Popup sends: a neutral :class:`~sessions.model.Message` as a mail to a list.

Subject ``[Popup] 2/4: …`` for prompts, a plain-text part (the text every mail program shows, with
a footer after the signature delimiter saying how to answer), an HTML part (everything escaped:
neither a plan's text nor a member's quoted words can add markup), and the attachments. A recap
that carries the article as HTML gets that page as its HTML part; its Markdown (and chart) go
along as attachments. Prompts and the recap refer to the opening mail, so mail programs show the
day as one conversation.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from html import escape

from adapters.email.ids import OwnId
from sessions.model import Message

# sessions.compose titles a prompt "Prompt 2 of 4": the subject says it the mail way, "2/4".
_PROMPT_TITLE = re.compile(r"Prompt (\d+) of (\d+)")
_SUBJECT_CHARS = 90
# Lines up to RFC 5322's 998: a subject with its reply token stays on one line (folded, some programs
# show it with a leading space).
_POLICY = policy.SMTP.clone(max_line_length=998)

HOW_TO_ANSWER = (
    "Answer by replying to this mail (to the list or to Popup alone): your answer goes into the "
    "day's article, with your name as your mail program shows it; quoted text and signatures are left out.",
    "Reply with the single word “forget” to any of this day's mails to have your answers removed.",
)


def subject(content: Message, own: OwnId) -> str:
    headline = _headline(content)
    return f"[Popup] {headline} [#{own.token}]"


def _headline(content: Message) -> str:
    found = _PROMPT_TITLE.fullmatch(content.title.strip())
    first_line = next((line.strip() for line in content.body.splitlines() if line.strip()), "")
    if found is not None:
        return f"{found[1]}/{found[2]}: {_shorten(first_line)}"
    return _shorten(content.title.strip() or first_line or "Popup learning session")


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SUBJECT_CHARS else flat[: _SUBJECT_CHARS - 1].rstrip() + "…"


def compose_mail(
    content: Message,
    *,
    own: OwnId,
    sender: str,
    to: str,
    at: datetime,
    in_reply_to: str | None = None,
) -> EmailMessage:
    """The mail for ``content``; ``own`` gives its Message-ID, ``in_reply_to`` the opening mail's."""
    mail = EmailMessage(policy=_POLICY)
    mail["Subject"] = subject(content, own)
    mail["From"] = formataddr(("Popup", sender))
    mail["To"] = to
    mail["Date"] = format_datetime(at)
    mail["Message-ID"] = own.header
    if in_reply_to is not None and in_reply_to != own.header:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    # Out-of-office responders and Exchange leave mails marked so alone (RFC 3834): no storm of
    # automatic replies from a list of hundreds.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    footer = footer_lines(own)
    mail.set_content(content.plain_text() + "\n\n-- \n" + "\n".join(footer) + "\n")
    article = next((a for a in content.attachments if a.content_type.startswith("text/html")), None)
    html = article.data.decode("utf-8", "replace") if article is not None else _html(content, footer)
    mail.add_alternative(html, subtype="html")
    for attachment in content.attachments:
        if attachment is article:
            continue
        maintype, _, subtype = attachment.content_type.partition(";")[0].strip().partition("/")
        mail.add_attachment(
            attachment.data, maintype=maintype or "application", subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return mail


def confirmation(text: str, *, own: OwnId, sender: str, to: str, at: datetime, answering: str) -> EmailMessage:
    """The answer to a ``forget`` mail, to the member alone."""
    mail = EmailMessage(policy=_POLICY)
    mail["Subject"] = "[Popup] Your answers were removed"
    mail["From"] = formataddr(("Popup", sender))
    mail["To"] = to
    mail["Date"] = format_datetime(at)
    mail["Message-ID"] = own.header
    mail["In-Reply-To"] = f"<{answering}>"
    mail["References"] = f"<{answering}>"
    mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(text + "\n")
    return mail


def footer_lines(own: OwnId) -> tuple[str, ...]:
    """How to answer a prompt's mail; on the day's other mails, only how to ``forget``."""
    return HOW_TO_ANSWER if own.opens_thread else HOW_TO_ANSWER[1:]


def _html(content: Message, footer: tuple[str, ...]) -> str:
    parts = ['<!doctype html><html><body style="font-family: system-ui, sans-serif; max-width: 42rem">']
    if content.title:
        parts.append(f"<h2>{escape(content.title)}</h2>")
    parts.extend(_paragraphs(content.body))
    for section in content.sections:
        if section.heading:
            parts.append(f"<h3>{escape(section.heading)}</h3>")
        for line in section.lines:
            parts.append(f"<p>{escape(line)}</p>")
        for quote in section.quotes:
            who = f" — {escape(quote.author)}" if quote.author else ""
            note = f" ({escape(quote.note)})" if quote.note else ""
            parts.append(
                '<blockquote style="border-left: 3px solid #ccc; margin: 0.5em 0; padding-left: 0.75em">'
                f"{_with_breaks(quote.text)}<br><small>{who}{note}</small></blockquote>"
            )
    parts.append('<hr><p style="color: #555; font-size: 0.9em">')
    parts.append("<br>".join(escape(line) for line in footer))
    parts.append("</p></body></html>")
    return "\n".join(parts)


def _paragraphs(text: str) -> list[str]:
    return [f"<p>{_with_breaks(chunk)}</p>" for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]


def _with_breaks(text: str) -> str:
    return "<br>".join(escape(line) for line in text.splitlines())
