"""Hypothesis over the mail parser: arbitrary headers and MIME structures never make a traceback,
and however often a mail is fetched, its reply is stored once."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.email import ids
from adapters.email.parse import MailForget, MailReply, read_mail
from sessions.model import ChannelRef
from sessions.records import NewPrompt, NewReply, NewSession
from storage.sqlite import SqliteStore
from tests.email.conftest import BOT

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
LISTS = {"learning": "learning"}
PROMPT = ids.own_id("popup:1:1:prompt:1", list_name="learning", thread=True, domain="example.org")
OPENING = ids.own_id("popup:1:1:opening", list_name="learning", thread=False, domain="example.org")

# Values that reach the interesting paths (our ids and tokens, robots, encodings) among random text.
header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from([
        PROMPT.header, OPENING.header, f"Re: x [#{PROMPT.token}]", "auto-replied", "no", "bulk", "list",
        "Ann <ann@example.net>", "MAILER-DAEMON@x", "<>", BOT, "=?utf-8?b?w6k=?=", "=?bogus?q?x?=",
        "Mon, 3 Jun 2024 10:00:00 +0200", "Tue, 99 Foo 1 99:99", "<a@b> <c@d>", "<<<>>>", "\"unclosed",
        "text/plain; charset=unknown-8bit", "multipart/mixed; boundary=b", "base64", "quoted-printable",
    ]),
)
header_names = st.one_of(
    st.sampled_from([
        "From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date", "Auto-Submitted",
        "Precedence", "X-Autoreply", "Return-Path", "Content-Type", "Content-Transfer-Encoding",
        "Content-Disposition", "Delivered-To",
    ]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=12)


def _leaf() -> st.SearchStrategy[bytes]:
    content_types = st.sampled_from([
        "text/plain", "text/plain; charset=utf-8", "text/plain; charset=latin-1", "text/plain; charset=nope",
        "text/html", "text/html; charset=utf-8", "application/pdf", "image/png", "message/rfc822",
        "message/delivery-status", "text/rfc822-headers",
    ])
    encodings = st.sampled_from(["", "base64", "quoted-printable", "8bit", "7bit", "x-unknown"])
    bodies = st.one_of(st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
                       st.binary(max_size=200),
                       st.sampled_from([b"forget", b"My answer\n\nOn Mon, Ann wrote:\n> q", b"<p>Hi</p>"]))
    return st.builds(
        lambda ct, enc, disp, body: (
            f"Content-Type: {ct}\r\n"
            + (f"Content-Transfer-Encoding: {enc}\r\n" if enc else "")
            + ("Content-Disposition: attachment; filename=a.bin\r\n" if disp else "")
        ).encode() + b"\r\n" + body,
        content_types, encodings, st.booleans(), bodies,
    )


def _multipart(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    subtypes = st.sampled_from(["mixed", "alternative", "related", "report; report-type=delivery-status", "signed"])
    return st.builds(
        lambda sub, parts, closed: (
            f'Content-Type: multipart/{sub}; boundary="=b{len(parts)}="\r\n\r\n'.encode()
            + b"".join(f"--=b{len(parts)}=\r\n".encode() + part + b"\r\n" for part in parts)
            + (f"--=b{len(parts)}=--\r\n".encode() if closed else b"")
        ),
        subtypes, st.lists(children, max_size=4), st.booleans(),
    )


bodies = st.recursive(_leaf(), _multipart, max_leaves=8)


@st.composite
def raw_mails(draw: st.DrawFn) -> bytes:
    head = b"".join(f"{name}: {value}".encode("utf-8", "surrogatepass") + b"\r\n"
                    for name, value in draw(headers)
                    if "\r" not in value and "\n" not in value)
    return head + draw(bodies)


class _Recorder(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_mails())
def test_no_mail_makes_a_traceback_and_reading_twice_reads_the_same(raw: bytes) -> None:
    handler = _Recorder(logging.WARNING)
    records = handler.records
    logger = logging.getLogger("adapters.email.parse")
    logger.addHandler(handler)
    try:
        first = read_mail(raw, own_address=BOT, lists=LISTS, now=NOW)
        again = read_mail(raw, own_address=BOT, lists=LISTS, now=NOW)
    finally:
        logger.removeHandler(handler)
    assert first == again
    # The parser copes on its own: its last-resort guard ("could not be read") is never what saved it.
    assert not records, [(r.getMessage(), r.exc_info) for r in records]
    if isinstance(first, MailReply | MailForget):
        assert "@" not in first.sender.display_name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mails=st.lists(st.tuples(raw_mails(), st.integers(min_value=1, max_value=3)), min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_however_often_a_mail_is_fetched_its_reply_is_stored_once(mails: list[tuple[bytes, int]],
                                                                  order: object) -> None:
    # Make a few of them certainly answers, so the store is exercised every time.
    answers = [
        (f"From: P{i} <p{i}@example.net>\r\nMessage-ID: <r{i}@example.net>\r\nIn-Reply-To: {PROMPT.header}\r\n"
         f"Content-Type: text/plain\r\n\r\nanswer {i}\r\n").encode()
        for i in range(2)
    ]
    deliveries = [raw for raw, times in mails for _ in range(times)] + answers + answers
    order.shuffle(deliveries)  # type: ignore[attr-defined]
    replies = [r for raw in deliveries if isinstance(r := read_mail(raw, own_address=BOT, lists=LISTS, now=NOW),
                                                     MailReply)]
    distinct = {reply.message_id for reply in replies}
    assert asyncio.run(_stored(replies)) == len(distinct)


async def _stored(replies: list[MailReply]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        store = await SqliteStore.open(Path(folder) / "popup.db")
        try:
            channel = ChannelRef(platform="email", channel_id="learning")
            session = await store.create_session(NewSession(
                plan_name="p", title="t", intro="", timezone="UTC", channel=channel, anonymous=False,
                started_by="org", started_at=NOW - timedelta(hours=1), recap_at=NOW + timedelta(hours=1),
                prompts=(NewPrompt(text="q", due_at=NOW),),
            ))
            assert session is not None
            [prompt] = await store.prompts(session.id)
            await asyncio.gather(*(
                store.add_reply(NewReply(
                    session_id=session.id, prompt_id=prompt.id, platform="email", channel_id=reply.list_name,
                    message_id=reply.message_id, author_id=reply.sender.author_id,
                    author_name=reply.sender.display_name, text=reply.text, created_at=reply.at,
                ))
                for reply in replies
            ))
            return (await store.session_stats(session.id)).replies
        finally:
            await store.close()
