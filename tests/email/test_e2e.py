"""A whole day with a mailing list, through ``bot.app.App`` as ``popup run`` builds it, against real
servers: started on the console, a list invited, answers from Gmail, Outlook and Apple Mail (one
HTML-only, one with an attachment), an out-of-office and a bounce, a restart while mails arrive,
and the recap mailed once."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter
from bot.app import App
from bot.config import load_config
from tests.config_files import plan, write_config
from tests.email import mails
from tests.email.conftest import BOT
from tests.email.rig import WITHIN
from tests.email.servers import PASSWORD, USER, Dovecot, Smtp
from tests.support import eventually

pytestmark = pytest.mark.e2e

DAY = plan(
    "day", "+2h", ("+0s", "What did you learn from a mistake?"), ("+1h", "Who taught you the most this year?"),
    title="What we learnt",
)


def config_for(tmp_path: Path, dovecot: Dovecot, smtp: Smtp) -> Path:
    return write_config(
        tmp_path,
        plans=[DAY],
        console={"enabled": True},
        email={
            "enabled": True,
            "address": BOT,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_tls": "none",
            "imap_host": "127.0.0.1",
            "imap_port": dovecot.port,
            "imap_tls": "none",
            "lists": [{"name": "learning", "address": "learning@lists.example.org"}],
        },
    )


async def started(config_path: Path) -> tuple[App, ConsoleAdapter]:
    env = {"POPUP_IMAP_USER": USER, "POPUP_IMAP_PASSWORD": PASSWORD}
    app = App(load_config(config_path, env=env), console_out=io.StringIO(), console_stdin=False)
    await app.start()
    console = next(a for a in app.adapters if isinstance(a, ConsoleAdapter))
    return app, console


def mid(mail: object) -> str:
    return str(mail["Message-ID"]).strip("<>")  # type: ignore[index]


async def test_a_day_on_a_mailing_list(tmp_path: Path, dovecot: Dovecot, smtp: Smtp) -> None:
    config = config_for(tmp_path, dovecot, smtp)
    lists = smtp.handler

    def sent(part: str) -> list:  # type: ignore[type-arg]
        return [m for m in lists.parsed() if part in str(m["Subject"])]

    async def mail(part: str):  # type: ignore[no-untyped-def]
        await eventually(lambda: bool(sent(part)), WITHIN, what=f"a mail with {part!r}")
        return sent(part)[0]

    async def stored(app: App, count: int) -> list:  # type: ignore[type-arg]
        assert app.store is not None
        store = app.store

        async def enough() -> bool:
            return len([r async for r in store.iter_replies(1)]) >= count

        await eventually(enough, WITHIN, what=f"{count} replies stored")
        return [r async for r in store.iter_replies(1)]

    app, console = await started(config)
    try:
        assert (await console.command("/popup start day")).startswith("Started session #1")
        assert "Invited the list learning" in await console.command("/popup invite email:learning")
        first = await mail("[Popup] 1/2: What did you learn from a mistake?")
        ann = mails.gmail_reply(first, name="Ann Example", address="ann@example.net", text="Say it early.")
        await asyncio.to_thread(
            dovecot.append,
            ann,
            mails.outlook_reply(first, name="Bo Berg", address="bo@corp.example", text="Write a post-mortem.",
                                keep_references=False),
            mails.apple_reply(first, name="Cy", address="cy@me.example", text="Laugh about it."),
            mails.html_only_reply(first, name="Di", address="di@example.net",
                                  html="<div>Ask <i>why</i> five times.</div><blockquote>quoted</blockquote>"),
            mails.reply_with_attachment(first, name="Fay", address="fay@example.net", text="Notes attached."),
            mails.out_of_office(first, name="Hal", address="hal@example.net"),
            mails.bounce(first, failed="gone@example.net"),
        )
        await stored(app, 5)
        # More answers arrive while the bot goes down, and while it is down.
        late = [
            mails.reply_to_reply(first, ann, name="Gus", address="gus@example.net", text="Agreed, Ann."),
            mails.gmail_reply(first, name="Ivy", address="ivy@example.net", text="Sleep on it."),
        ]
        arriving = asyncio.create_task(asyncio.to_thread(dovecot.append, *late))
        await app.stop()
        await arriving
        await asyncio.to_thread(dovecot.append,
                                mails.gmail_reply(first, name="Jo", address="jo@example.net", text="Fix it first."))
    finally:
        await app.stop()

    app, console = await started(config)
    try:
        await stored(app, 8)
        await console.command("/popup next")
        second = await mail("[Popup] 2/2: Who taught you the most this year?")
        await asyncio.to_thread(dovecot.append, mails.gmail_reply(second, name="Ann Example",
                                                                  address="ann@example.net", text="My mentor."))
        replies = await stored(app, 9)
        await console.command("/popup stop")
        recap = await mail("[Popup] Recap")
    finally:
        await app.stop()

    texts = sorted(r.text for r in replies)
    assert texts == sorted([
        "Say it early.", "Write a post-mortem.", "Laugh about it.", "Ask why five times.", "Notes attached.",
        "Agreed, Ann.", "Sleep on it.", "Fix it first.", "My mentor.",
    ])
    assert {r.author_name for r in replies} == {"Ann Example", "Bo Berg", "Cy", "Di", "Fay", "Gus", "Ivy", "Jo"}
    assert all("@" not in r.author_id for r in replies)
    assert len({r.author_id for r in replies}) == 8  # Ann's two answers are one voice
    flags = await asyncio.to_thread(dovecot.flags_by_message_id)
    assert {m for m, marks in flags.items() if "\\Seen" in marks} >= {mid(ann)}
    unseen_robots = [m for m, marks in flags.items() if "\\Seen" not in marks and "mx.example.net" in m]
    assert len(unseen_robots) == 1  # the bounce, left as it was

    # The recap: the article as the HTML part, the Markdown attached, mailed once.
    html = recap.get_body(("html",))
    assert html is not None
    assert "<!doctype html>" in str(html.get_content()).lower()
    assert "Say it early." in str(html.get_content())
    attached = {a.get_filename() for a in recap.iter_attachments()}
    assert any(name.endswith(".md") for name in attached)

    app, console = await started(config)  # once more: the day is over, nothing goes out again
    try:
        assert "closed" in await console.command("/popup status")
    finally:
        await app.stop()
    assert len(sent("[Popup] Recap")) == 1
    assert len(sent("1/2:")) == 1
    assert len(sent("2/2:")) == 1
