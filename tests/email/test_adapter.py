"""The e-mail adapter against real servers: Dovecot for IMAP, aiosmtpd playing the lists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.email.settings import EmailSettings
from sessions.model import ChannelRef
from tests.email import mails
from tests.email.rig import WITHIN, MailRig
from tests.email.servers import Dovecot, Smtp
from tests.support import eventually

pytestmark = pytest.mark.e2e

LEARNING = ChannelRef(platform="email", channel_id="learning")


@pytest.fixture
async def rig(tmp_path: Path, email_settings: EmailSettings, smtp: Smtp, dovecot: Dovecot) -> AsyncIterator[MailRig]:
    rig = await MailRig.start(tmp_path / "popup.db", email_settings, smtp, dovecot)
    try:
        yield rig
    finally:
        await rig.close()


async def test_an_invited_list_gets_the_opening_and_the_prompts_so_far_then_the_rest(rig: MailRig) -> None:
    assert (await rig.say("/popup start day")).startswith("Started session #1")
    await eventually(lambda: "thread 1" in rig.out.getvalue(), WITHIN, what="prompt 1 on the console")
    assert await rig.say("/popup invite email:learning") == (
        "Invited the list learning to session #1: it has the opening and the prompts so far, and gets the rest at "
        "their times and the recap by mail.")
    opening = await rig.mail("[Popup] Popup learning session: Plan day")
    first = await rig.mail("[Popup] 1/2: Prompt 1 of day?")
    assert opening["To"] == "learning@lists.example.org"
    assert first["In-Reply-To"] == opening["Message-ID"]
    assert not rig.sent("2/2")
    await rig.say("/popup next")
    second = await rig.mail("[Popup] 2/2: Prompt 2 of day?")
    assert second["Message-ID"] != first["Message-ID"]
    # Inviting again sends nothing twice; an unknown list is named as such.
    await rig.say("/popup invite email:learning")
    assert "no email channel 'nowhere' (configured: learning, makers)" in (
        await rig.say("/popup invite email:nowhere")).lower()
    await rig.say("/popup stop")
    await rig.mail("[Popup] Recap")
    assert [str(m["Subject"]).split(" [#")[0] for m in rig.smtp.handler.parsed()] == [
        "[Popup] Popup learning session: Plan day", "[Popup] 1/2: Prompt 1 of day?", "[Popup] 2/2: Prompt 2 of day?",
        *[str(m["Subject"]).split(" [#")[0] for m in rig.sent("[Popup] Recap")],
    ]
    assert len(rig.sent("[Popup] Recap")) == 1


async def test_replies_are_stored_once_and_marked_seen_only_then(rig: MailRig) -> None:
    await rig.start_with_list()
    prompt = await rig.mail("1/2:")
    answer = mails.gmail_reply(prompt, name="Ann Example", address="ann@example.net", text="Ask early.")
    await rig.append(answer)
    [reply] = await rig.wait_replies(1)
    assert (reply.text, reply.author_name, reply.platform, reply.channel_id) == (
        "Ask early.", "Ann Example", "email", "learning")
    assert "ann@" not in reply.author_id
    answer_id = str(answer["Message-ID"]).strip("<>")
    await rig.seen(answer_id)
    # Someone marks it unread in the folder: it is read again (and so seen again), and still stored once.
    await asyncio.to_thread(rig.dovecot.unsee, answer_id)
    assert "\\Seen" not in (await rig.flags())[answer_id]
    await rig.seen(answer_id)
    assert len(await rig.replies()) == 1


async def test_the_bots_own_mails_robots_and_strangers_are_left_unseen(rig: MailRig) -> None:
    await rig.start_with_list()
    prompt = await rig.mail("1/2:")
    own_id = str(prompt["Message-ID"]).strip("<>")
    ooo = mails.out_of_office(prompt, name="Hal", address="hal@example.net")
    bounced = mails.bounce(prompt, failed="gone@example.net")
    stranger = mails.gmail_reply(prompt, name="Jo", address="jo@example.net", text="x")
    del stranger["In-Reply-To"], stranger["References"]
    stranger.replace_header("Subject", "Lunch?")
    # A real answer after them: once it is in, the reader has been past the others.
    last = mails.gmail_reply(prompt, name="Kai", address="kai@example.net", text="Last.")
    await rig.append(ooo, bounced, stranger, last)
    await rig.seen(str(last["Message-ID"]).strip("<>"))
    flags = await rig.flags()
    assert own_id in flags  # the list sent the prompt back to the bot, a member
    seen = {message_id for message_id, marks in flags.items() if "\\Seen" in marks}
    assert seen == {str(last["Message-ID"]).strip("<>")}
    assert [r.text for r in await rig.replies()] == ["Last."]


async def test_find_post_finds_the_lists_copy_of_a_mail(rig: MailRig) -> None:
    await rig.start_with_list()
    prompt = await rig.mail("1/2:")
    [post] = [p for p in await rig.store.posts(1) if p.channel == LEARNING and p.key == "prompt:1"]
    session = await rig.store.get_session(1)
    assert session is not None
    key = f"popup:1:{int(session.started_at.timestamp())}:prompt:1"

    async def the_lists_copy_is_back() -> bool:
        return await rig.email.find_post(LEARNING, key) is not None

    await eventually(the_lists_copy_is_back, WITHIN, what="the list's copy of prompt 1 in the folder")
    found = await rig.email.find_post(LEARNING, key)
    assert found is not None
    assert found.thread is not None
    assert found.message.message_id == post.message_id == str(prompt["Message-ID"]).strip("<>")
    assert await rig.email.find_post(LEARNING, key.replace("prompt:1", "prompt:9")) is None


async def test_forget_by_mail_removes_the_senders_replies_and_confirms(rig: MailRig) -> None:
    await rig.start_with_list()
    prompt = await rig.mail("1/2:")
    opening = await rig.mail("Popup learning session")
    await rig.append(mails.gmail_reply(prompt, name="Ann", address="ann@example.net", text="One."),
                     mails.apple_reply(prompt, name="Bo", address="bo@example.net", text="Two."))
    await rig.wait_replies(2)
    forget = mails.gmail_reply(opening, name="Ann", address="ANN@example.net", text="forget")
    await rig.append(forget)
    await eventually(lambda: bool(rig.smtp.handler.to("ANN@example.net")), WITHIN, what="the confirmation")
    [confirmation] = rig.smtp.handler.to("ANN@example.net")
    assert "Removed your 1 reply from session #1" in mails.plain(confirmation)
    assert confirmation["In-Reply-To"] == forget["Message-ID"]
    assert [r.author_name for r in await rig.replies()] == ["Bo"]


async def test_a_reply_that_could_not_be_stored_stays_unseen_and_is_read_again(
    tmp_path: Path, email_settings: EmailSettings, smtp: Smtp, dovecot: Dovecot
) -> None:
    rig = await MailRig.start(tmp_path / "popup.db", email_settings, smtp, dovecot, failures=2)
    try:
        await rig.start_with_list()
        prompt = await rig.mail("1/2:")
        answer = mails.outlook_reply(prompt, name="Cy", address="cy@example.net", text="Stored at last.")
        await rig.append(answer)
        [reply] = await rig.wait_replies(1)
        assert reply.text == "Stored at last."
        assert "\\Seen" in (await rig.flags())[str(answer["Message-ID"]).strip("<>")]
    finally:
        await rig.close()


async def test_without_idle_the_folder_is_polled(
    tmp_path: Path, email_settings: EmailSettings, smtp: Smtp, dovecot: Dovecot
) -> None:
    rig = await MailRig.start(tmp_path / "popup.db", email_settings, smtp, dovecot, idle=False, poll_seconds=0.1)
    try:
        await rig.start_with_list()
        prompt = await rig.mail("1/2:")
        await rig.append(mails.html_only_reply(prompt, name="Di", address="di@example.net", html="<p>Polled.</p>"))
        [reply] = await rig.wait_replies(1)
        assert reply.text == "Polled."
    finally:
        await rig.close()
