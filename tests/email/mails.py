"""Mails as members' mail programs write them: Gmail, Outlook and Apple Mail quoting, HTML-only,
with an attachment, and what robots send (out-of-office, bounces)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

_numbers = itertools.count(1)


def new_message_id(host: str = "mail.example.net") -> str:
    return f"<m{next(_numbers)}.{datetime.now(UTC).timestamp():.0f}@{host}>"


def plain(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _base(*, name: str, address: str, to: str, subject: str, in_reply_to: str | None,
          references: list[str], message_id: str | None = None) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = formataddr((name, address)) if name else address
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id or new_message_id()
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = " ".join(references)
    return mail


def gmail_reply(prompt: EmailMessage, *, name: str, address: str, text: str,
                message_id: str | None = None) -> EmailMessage:
    quoted = "\n".join(f"> {line}" for line in plain(prompt).splitlines())
    mail = _base(name=name, address=address, to=str(prompt["To"]), subject=f"Re: {prompt['Subject']}",
                 in_reply_to=str(prompt["Message-ID"]),
                 references=[*(str(prompt["References"]).split() if prompt["References"] else []),
                             str(prompt["Message-ID"])], message_id=message_id)
    mail.set_content(f"{text}\n\nOn Mon, 3 Jun 2024 at 09:12, Popup <{prompt['From'].addresses[0].addr_spec}>\n"
                     f"wrote:\n\n{quoted}\n")
    mail.add_alternative(
        f'<div dir="ltr">{text}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, '
        f"3 Jun 2024 at 09:12, Popup wrote:<br></div><blockquote class=\"gmail_quote\">the prompt</blockquote></div>",
        subtype="html",
    )
    return mail


def outlook_reply(prompt: EmailMessage, *, name: str, address: str, text: str,
                  keep_references: bool = True) -> EmailMessage:
    """Top-posted, Outlook's header block; without references it is as a list that rewrites them left it."""
    mail = _base(name=name, address=address, to=str(prompt["To"]), subject=f"RE: {prompt['Subject']}",
                 in_reply_to=str(prompt["Message-ID"]) if keep_references else None,
                 references=[str(prompt["Message-ID"])] if keep_references else [])
    mail["Thread-Index"] = "AQHaoB1vXc2kP0y6lUy8H3zQ3+Xm9A=="
    mail.set_content(
        f"{text}\n\nGet Outlook for iOS\n________________________________\nFrom: Popup <popup@example.org>\n"
        f"Sent: Monday, June 3, 2024 9:12 AM\nTo: {prompt['To']}\nSubject: {prompt['Subject']}\n\nThe prompt.\n"
    )
    return mail


def apple_reply(prompt: EmailMessage, *, name: str, address: str, text: str) -> EmailMessage:
    mail = _base(name=name, address=address, to=str(prompt["To"]), subject=f"Re: {prompt['Subject']}",
                 in_reply_to=str(prompt["Message-ID"]), references=[str(prompt["Message-ID"])])
    mail.set_content(f"{text}\n\nSent from my iPhone\n\n> On 3 Jun 2024, at 09:12, Popup <popup@example.org> "
                     "wrote:\n> \n> The prompt.\n")
    return mail


def html_only_reply(prompt: EmailMessage, *, name: str, address: str, html: str) -> EmailMessage:
    mail = _base(name=name, address=address, to=str(prompt["To"]), subject=f"Re: {prompt['Subject']}",
                 in_reply_to=str(prompt["Message-ID"]), references=[str(prompt["Message-ID"])])
    mail.set_content(html, subtype="html")
    return mail


def reply_with_attachment(prompt: EmailMessage, *, name: str, address: str, text: str) -> EmailMessage:
    mail = _base(name=name, address=address, to=str(prompt["To"]), subject=f"Re: {prompt['Subject']}",
                 in_reply_to=str(prompt["Message-ID"]), references=[str(prompt["Message-ID"])])
    mail.set_content(text)
    mail.add_attachment(b"%PDF-1.4 not really a pdf, and never read", maintype="application", subtype="pdf",
                        filename="notes.pdf")
    return mail


def reply_to_reply(prompt: EmailMessage, earlier: EmailMessage, *, name: str, address: str,
                   text: str) -> EmailMessage:
    references = [*str(earlier["References"]).split(), str(earlier["Message-ID"])]
    mail = _base(name=name, address=address, to=str(prompt["To"]), subject=f"Re: {earlier['Subject']}",
                 in_reply_to=str(earlier["Message-ID"]), references=references)
    mail.set_content(f"{text}\n\n> {plain(earlier).splitlines()[0]}\n")
    return mail


def out_of_office(prompt: EmailMessage, *, name: str, address: str) -> EmailMessage:
    mail = _base(name=name, address=address, to="popup@example.org", subject=f"Automatic reply: {prompt['Subject']}",
                 in_reply_to=str(prompt["Message-ID"]), references=[str(prompt["Message-ID"])])
    mail["Auto-Submitted"] = "auto-replied"
    mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content("I am out of the office until Monday with limited access to e-mail.")
    return mail


def bounce(prompt: EmailMessage, *, failed: str) -> bytes:
    """A delivery status notification, naming the prompt it bounced (and claiming to answer it)."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: popup@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {new_message_id('mx.example.net')}\r\n"
        f"In-Reply-To: {prompt['Message-ID']}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b0unce"\r\n'
        "\r\n--b0unce\r\nContent-Type: text/plain\r\n\r\n"
        f"I'm sorry to have to inform you that your message could not be delivered to {failed}.\r\n"
        "--b0unce\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; {failed}\r\nAction: failed\r\n"
        "Status: 5.1.1\r\n"
        "--b0unce\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {prompt['Message-ID']}\r\nSubject: {prompt['Subject']}\r\n"
        "--b0unce--\r\n"
    ).encode()
