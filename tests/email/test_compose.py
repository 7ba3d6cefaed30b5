"""The mails Popup sends: subject, a stable Message-ID, text and HTML, how to answer, the recap's article."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from adapters.email import compose, ids
from sessions.model import Attachment, Message, Quote, Section
from tests.email.conftest import BOT

NOW = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
PROMPT = Message(title="Prompt 2 of 4", body="What did you <b>learn</b> from a mistake?\nTake your time.",
                 sections=(Section(lines=("Reply in this thread.",)),))


def sent(content: Message, key: str = "popup:3:1717400000:prompt:2", *, thread: bool = True) -> EmailMessage:
    own = ids.own_id(key, list_name="learning", thread=thread, domain="example.org")
    mail = compose.compose_mail(content, own=own, sender=BOT, to="learning@lists.example.org", at=NOW)
    parsed = message_from_bytes(mail.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def part(mail: EmailMessage, subtype: str) -> str:
    body = mail.get_body((subtype,))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def test_a_prompt_mail_has_the_subject_form_and_a_reply_token() -> None:
    mail = sent(PROMPT)
    own = ids.own_id("popup:3:1717400000:prompt:2", list_name="learning", thread=True, domain="example.org")
    assert mail["Subject"] == f"[Popup] 2/4: What did you <b>learn</b> from a mistake? [#{own.token}]"
    assert mail["Message-ID"] == own.header
    assert mail["From"].addresses[0].addr_spec == BOT
    assert mail["Auto-Submitted"] == "auto-generated"


def test_the_message_id_is_the_same_for_the_same_post_and_list_and_differs_otherwise() -> None:
    first, again = sent(PROMPT), sent(PROMPT)
    assert first["Message-ID"] == again["Message-ID"]
    assert sent(PROMPT, key="popup:3:1717400000:prompt:3")["Message-ID"] != first["Message-ID"]
    other_list = ids.own_id("popup:3:1717400000:prompt:2", list_name="makers", thread=True, domain="example.org")
    assert other_list.header != first["Message-ID"]


def test_text_and_html_parts_say_how_to_answer_and_escape_everything() -> None:
    mail = sent(PROMPT)
    text, html = part(mail, "plain"), part(mail, "html")
    assert "What did you <b>learn</b> from a mistake?" in text
    assert "\n-- \n" in text  # the footer is behind the signature delimiter: quoting it back cuts it
    assert "replying to this mail" in text
    assert "day's article" in text
    assert "What did you &lt;b&gt;learn&lt;/b&gt;" in html
    assert "<b>learn</b>" not in html
    assert "replying to this mail" in html


def test_other_mails_say_only_how_to_forget() -> None:
    mail = sent(Message(title="Popup learning session: x", body="intro"), key="popup:3:1717400000:opening",
                thread=False)
    assert mail["Subject"].startswith("[Popup] Popup learning session: x [#learning.m")
    assert "replying to this mail" not in part(mail, "plain")
    assert "forget" in part(mail, "plain")


def test_quotes_in_html_are_escaped() -> None:
    content = Message(title="Recap", sections=(Section(heading="1. Q", quotes=(Quote(text="<script>x</script>",
                                                                                     author="<i>Ann</i>"),)),))
    html = part(sent(content, key="popup:3:1717400000:recap", thread=False), "html")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;i&gt;Ann&lt;/i&gt;" in html


def test_the_recap_carries_the_article_as_html_and_the_markdown_attached() -> None:
    article = "<!doctype html><html><body><h1>The day</h1></body></html>"
    content = Message(
        title="Recap: the day",
        body="12 replies",
        attachments=(
            Attachment(filename="day.md", content_type="text/markdown; charset=utf-8", data=b"# The day\n"),
            Attachment(filename="day.html", content_type="text/html; charset=utf-8", data=article.encode()),
            Attachment(filename="day.png", content_type="image/png", data=b"\x89PNG\r\n"),
        ),
    )
    mail = sent(content, key="popup:3:1717400000:recap", thread=False)
    assert part(mail, "html").strip() == article
    assert "12 replies" in part(mail, "plain")
    attached = {a.get_filename(): a for a in mail.iter_attachments()}
    assert set(attached) == {"day.md", "day.png"}
    assert attached["day.md"].get_content_type() == "text/markdown"
    assert attached["day.md"].get_payload(decode=True) == b"# The day\n"


def test_a_prompt_refers_to_the_opening_so_mail_programs_show_one_conversation() -> None:
    own = ids.own_id("popup:3:1:prompt:1", list_name="learning", thread=True, domain="example.org")
    opening = ids.own_id("popup:3:1:opening", list_name="learning", thread=False, domain="example.org")
    mail = compose.compose_mail(PROMPT, own=own, sender=BOT, to="l@x.example", at=NOW, in_reply_to=opening.header)
    assert mail["In-Reply-To"] == opening.header
    assert mail["References"] == opening.header
