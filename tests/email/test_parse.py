"""Reading mails: which prompt a mail answers, who wrote it and what, and what is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest

from adapters.email import compose, ids
from adapters.email.parse import MailForget, MailReply, Skipped, author_id, read_mail
from sessions.model import Message, Section
from tests.email import mails
from tests.email.conftest import BOT

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
LISTS = {"learning": "learning", "makers": "makers"}
KEY = "popup:7:1717400000:prompt:2"


def prompt_mail(key: str = KEY, list_name: str = "learning") -> EmailMessage:
    own = ids.own_id(key, list_name=list_name, thread=True, domain="example.org")
    opening = ids.own_id("popup:7:1717400000:opening", list_name=list_name, thread=False, domain="example.org")
    content = Message(title="Prompt 2 of 4", body="What did you learn from a mistake?",
                      sections=(Section(lines=("Reply in this thread.",)),))
    return compose.compose_mail(content, own=own, sender=BOT, to=f"{list_name}@lists.example.org", at=NOW,
                                in_reply_to=opening.header)


def read(mail: EmailMessage | bytes) -> MailReply | MailForget | Skipped:
    raw = mail if isinstance(mail, bytes) else mail.as_bytes(policy=policy.SMTP)
    return read_mail(raw, own_address=BOT, lists=LISTS, now=NOW)


def thread_of(mail: EmailMessage) -> str:
    return str(mail["Message-ID"]).strip("<>")


def reply_text(mail: EmailMessage | bytes) -> str:
    result = read(mail)
    assert isinstance(result, MailReply), result
    return result.text


def test_a_gmail_reply_is_the_answer_without_the_quote() -> None:
    prompt = prompt_mail()
    result = read(mails.gmail_reply(prompt, name="Ann Example", address="ann@example.net", text="Ask early."))
    assert isinstance(result, MailReply)
    assert result.text == "Ask early."
    assert result.thread_id == thread_of(prompt)
    assert result.list_name == "learning"
    assert result.sender.display_name == "Ann Example"
    assert result.sender.author_id == author_id("ANN@example.net")
    assert "ann" not in result.sender.author_id


def test_an_outlook_reply_loses_its_header_block_and_footer() -> None:
    prompt = prompt_mail()
    text = reply_text(mails.outlook_reply(prompt, name="Bo", address="bo@corp.example", text="Pair on it.\nTwice."))
    assert text == "Pair on it.\nTwice."


def test_a_list_that_drops_the_references_still_leaves_the_subject_token() -> None:
    prompt = prompt_mail()
    mail = mails.outlook_reply(prompt, name="Bo", address="bo@corp.example", text="By subject.", keep_references=False)
    assert "In-Reply-To" not in mail
    assert "References" not in mail
    result = read(mail)
    assert isinstance(result, MailReply)
    assert result.thread_id == thread_of(prompt)


def test_an_apple_mail_reply_loses_the_attribution_and_sent_from() -> None:
    prompt = prompt_mail()
    assert reply_text(mails.apple_reply(prompt, name="Cy", address="cy@me.example", text="Write it down.")) == (
        "Write it down."
    )


def test_an_html_only_reply_is_made_text_without_its_quote() -> None:
    prompt = prompt_mail()
    html = ('<html><body><p>Teach it &amp; <b>learn</b> twice.</p><p>Second line</p>'
            '<div class="gmail_quote">On Mon wrote:<blockquote>old prompt</blockquote></div></body></html>')
    assert reply_text(mails.html_only_reply(prompt, name="Di", address="di@example.net", html=html)) == (
        "Teach it & learn twice.\n\nSecond line"
    )


def test_html_lines_in_divs_stay_lines() -> None:
    prompt = prompt_mail()
    html = "<div>One</div><div>Two<br></div><div><br></div><div>Three</div>"
    assert reply_text(mails.html_only_reply(prompt, name="Di", address="di@example.net", html=html)) == (
        "One\nTwo\n\nThree"
    )


def test_outlook_html_stops_where_the_answered_mail_begins() -> None:
    prompt = prompt_mail()
    html = ('<div>Mine.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Popup</div>'
            "<div>The prompt.</div>")
    assert reply_text(mails.html_only_reply(prompt, name="Ed", address="ed@example.net", html=html)) == "Mine."


def test_attachments_are_not_read() -> None:
    prompt = prompt_mail()
    mail = mails.reply_with_attachment(prompt, name="Fay", address="fay@example.net", text="See my notes.")
    assert reply_text(mail) == "See my notes."


def test_a_reply_to_a_reply_belongs_to_the_prompt() -> None:
    prompt = prompt_mail()
    first = mails.gmail_reply(prompt, name="Ann", address="ann@example.net", text="First.")
    second = mails.reply_to_reply(prompt, first, name="Gus", address="gus@example.net", text="Agreed with Ann.")
    result = read(second)
    assert isinstance(result, MailReply)
    assert result.thread_id == thread_of(prompt)
    assert result.text == "Agreed with Ann."


@pytest.mark.parametrize(
    "robot",
    [
        lambda p: mails.out_of_office(p, name="Hal", address="hal@example.net"),
        lambda p: mails.bounce(p, failed="gone@example.net"),
    ],
    ids=["out-of-office", "bounce"],
)
def test_robots_are_left_alone(robot: object) -> None:
    result = read(robot(prompt_mail()))  # type: ignore[operator]
    assert isinstance(result, Skipped)


def test_precedence_bulk_from_a_robot_is_left_alone_but_list_traffic_from_people_is_not() -> None:
    prompt = prompt_mail()
    robot = mails.gmail_reply(prompt, name="", address="noreply@service.example", text="Digest")
    robot["Precedence"] = "bulk"
    assert isinstance(read(robot), Skipped)
    person = mails.gmail_reply(prompt, name="Ivy", address="ivy@example.net", text="Hello list")
    person["Precedence"] = "list"
    assert reply_text(person) == "Hello list"


def test_the_bots_own_mails_are_left_alone_even_when_the_list_rewrites_from() -> None:
    prompt = prompt_mail()
    assert isinstance(read(prompt), Skipped)
    munged = prompt_mail()
    munged.replace_header("From", "Popup via learning <learning@lists.example.org>")
    assert isinstance(read(munged), Skipped)


def test_a_mail_that_answers_nothing_of_ours_is_left_alone() -> None:
    mail = EmailMessage()
    mail["From"] = "Jo <jo@example.net>"
    mail["Subject"] = "Lunch?"
    mail["Message-ID"] = "<lunch@example.net>"
    mail["In-Reply-To"] = "<popup.learning.p0123456789abcdef@elsewhere.example>"  # another deployment
    mail.set_content("Anyone?")
    assert read(mail) == Skipped(reason="answers none of Popup's mails")


def test_an_unknown_list_in_a_token_is_none_of_ours() -> None:
    prompt = prompt_mail(list_name="other")
    assert isinstance(read(mails.gmail_reply(prompt, name="Ann", address="ann@example.net", text="x")), Skipped)


def test_forget_answers_any_of_the_days_mails() -> None:
    opening = ids.own_id("popup:7:1717400000:opening", list_name="makers", thread=False, domain="example.org")
    mail = EmailMessage()
    mail["From"] = "Kim <kim@example.net>"
    mail["Subject"] = "Re: [Popup] Popup learning session: x"
    mail["Message-ID"] = "<forget-1@example.net>"
    mail["In-Reply-To"] = opening.header
    mail.set_content("Forget.\n\n-- \nKim\n")
    result = read(mail)
    assert isinstance(result, MailForget)
    assert result.list_name == "makers"
    assert result.address == "kim@example.net"
    assert result.sender.author_id == author_id("kim@example.net")


def test_a_reply_to_the_opening_is_not_an_answer() -> None:
    opening = ids.own_id("popup:7:1717400000:opening", list_name="learning", thread=False, domain="example.org")
    mail = EmailMessage()
    mail["From"] = "Kim <kim@example.net>"
    mail["Message-ID"] = "<hello@example.net>"
    mail["In-Reply-To"] = opening.header
    mail.set_content("Looking forward to it")
    assert isinstance(read(mail), Skipped)


def test_the_address_is_never_the_name() -> None:
    prompt = prompt_mail()
    for name in ("", "lee@example.net", "\u202eevil"):
        result = read(mails.gmail_reply(prompt, name=name, address="lee@example.net", text="Hi"))
        assert isinstance(result, MailReply)
        assert "@" not in result.sender.display_name
        assert "\u202e" not in result.sender.display_name


def test_the_date_is_the_senders_unless_it_is_in_the_future() -> None:
    prompt = prompt_mail()
    mail = mails.gmail_reply(prompt, name="Mo", address="mo@example.net", text="Hi")
    mail.replace_header("Date", "Mon, 03 Jun 2024 10:30:00 +0200")
    result = read(mail)
    assert isinstance(result, MailReply)
    assert result.at == datetime(2024, 6, 3, 8, 30, tzinfo=UTC)
    mail.replace_header("Date", "Mon, 03 Jun 2030 10:30:00 +0200")
    result = read(mail)
    assert isinstance(result, MailReply)
    assert result.at == NOW
    assert NOW - result.at < timedelta(seconds=1)


def test_a_mail_without_message_id_gets_the_same_id_each_time_it_is_read() -> None:
    prompt = prompt_mail()
    mail = mails.gmail_reply(prompt, name="Ny", address="ny@example.net", text="Hi")
    del mail["Message-ID"]
    raw = mail.as_bytes(policy=policy.SMTP)
    first, again = read(raw), read(raw)
    assert isinstance(first, MailReply)
    assert first == again


def test_unreadable_bytes_are_skipped() -> None:
    assert isinstance(read(b"\xff\xfe\x00garbage\r\n\r\n"), Skipped)


def test_an_encoded_name_with_a_comma_is_one_name() -> None:
    prompt = prompt_mail()
    mail = mails.gmail_reply(prompt, name="x", address="jd@example.net", text="Hi")
    mail.replace_header("From", "x")
    raw = mail.as_bytes(policy=policy.SMTP).replace(b"From: x", b"From: =?utf-8?q?Doe=2C_J=C3=B6hn?= <jd@example.net>")
    result = read(raw)
    assert isinstance(result, MailReply)
    assert result.sender.display_name == "Doe, Jöhn"
    assert result.sender.author_id == author_id("jd@example.net")
