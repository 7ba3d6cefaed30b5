"""One popup on Slack and Discord at once, end to end in one ``popup run`` process (issue 13).

Slack in HTTP mode (signed requests to the real bolt app, its Web API pointed at the fake Slack)
and Discord (the real discord.py client against the fake gateway and REST API). The session is
started on Slack, a Discord channel joins with the code from the start answer, members answer on
both, the process is killed and started again, Discord's API is down while a prompt goes out
(Slack gets it at once, Discord when it is back), and the recap reaches both. Afterwards the JSON
export has each reply once with its platform, and no post exists twice on either platform.

Everything waits for what it needs (the fakes' records, the database), never for the clock: the
second prompt and the recap come by ``/popup next`` and ``/popup stop``.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.config_files import discord_for, plan, slack_for, write_config
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender, command_form, event_callback, next_ts, reply_event
from tests.process import PopupProcess, free_port, popup_command, wait_closed
from tests.support import eventually

SLACK_CHANNEL = "CMULTI"
_MARKER = re.compile(r"Popup · ref ([0-9a-f]{16})(?: · (\d+)/(\d+))?")
_JOIN = re.compile(r"/popup join ([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{5})")

ACROSS = plan(
    "multi",
    "+2h",
    ("+1s", "What did you learn this week?"),
    ("+1h", "Who helped you learn it?"),
    title="Across platforms",
)


async def until(predicate: Callable[[], bool], what: str, popup: PopupProcess, within: float = 30.0) -> None:
    """:func:`tests.support.eventually`, with what the process logged when it did not happen."""
    try:
        await eventually(predicate, within=within, what=what)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{popup.stderr[-4000:]}") from None


def _slack_keys(fake: FakeSlack) -> Counter[tuple[str, int]]:
    keys: Counter[tuple[str, int]] = Counter()
    for message in fake.posts(SLACK_CHANNEL):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if "key" in payload:
            keys[(str(payload["key"]).split(":", 3)[3], int(payload.get("part", 0)))] += 1
    return keys


def _slack_thread(fake: FakeSlack, key: str) -> str:
    for message in fake.posts(SLACK_CHANNEL):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if str(payload.get("key", "")).endswith(":" + key) and payload.get("part", 0) == 0:
            return str(message["ts"])
    raise AssertionError(f"{key} is not posted on Slack")


def _discord_footers(fake: FakeDiscord) -> Counter[tuple[str, int]]:
    found: Counter[tuple[str, int]] = Counter()
    for message in fake.bot_posts():
        for embed in message.get("embeds") or []:
            marker = _MARKER.search(str((embed.get("footer") or {}).get("text", "")))
            if marker:
                found[(marker[1], int(marker[2] or 1))] += 1
                break
    return found


def _discord_titles(fake: FakeDiscord) -> list[str]:
    return [str(e.get("title", "")) for m in fake.bot_posts() for e in (m.get("embeds") or [])[:1]]


def _replies(db_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db_path) as db:
        return [(str(p), str(t)) for p, t in db.execute("SELECT platform, text FROM replies ORDER BY id")]


def _answers(interaction: Any) -> str:
    return "\n".join(str(f.get("content", "")) for f in interaction.followups)


async def _cli(*args: str) -> str:
    done = await popup_command(*args)
    assert done.code == 0, done.err
    return done.out


@pytest.mark.e2e
@pytest.mark.slow
async def test_one_popup_on_slack_and_discord_through_a_restart_and_an_outage(tmp_path: Path) -> None:
    slack = await FakeSlack(users={"UORG": "Olga", "UADA": "Ada"}, channel_names={SLACK_CHANNEL: "learning"}).start()
    discord = FakeDiscord()
    await discord.start()
    port = free_port()
    config = write_config(
        tmp_path, plans=[ACROSS], slack=slack_for(slack, port), discord=discord_for(discord), console={"enabled": False}
    )
    db = tmp_path / "popup.db"
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "DISCORD_TOKEN": discord.token}
    popup = PopupProcess(config, env)
    try:
        await popup.start()
        async with SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET) as sender:

            async def slack_command(text: str) -> None:
                form = command_form(SLACK_CHANNEL, "UORG", text, response_url=slack.response_url())
                assert (await sender.command(form))[0] == 200

            async def slack_reply(key: str, user: str, text: str) -> None:
                event = event_callback(reply_event(SLACK_CHANNEL, _slack_thread(slack, key), user, text, ts=next_ts()))
                while (await sender.event(event))[0] != 200:  # as Slack does: again until acknowledged
                    await asyncio.sleep(0.1)

            # Started on Slack; the organiser's private answer carries the join line.
            await slack_command("start multi")
            await until(lambda: any(_JOIN.search(str(r.get("text"))) for r in slack.responses), "start", popup)
            answer = next(str(r["text"]) for r in slack.responses if _JOIN.search(str(r.get("text"))))
            found = _JOIN.search(answer)
            assert found is not None
            code = found[1]
            private = [r["response_type"] for r in slack.responses if _JOIN.search(str(r.get("text")))]
            assert private == ["ephemeral"]
            await until(lambda: ("prompt:1", 0) in _slack_keys(slack), "prompt 1 on Slack", popup)

            # Joined from Discord: the opening and prompt 1 arrive there at once.
            joined = await discord.invoke(discord.olga, "join", {"code": code})
            await until(lambda: "joined session #1" in _answers(joined), "join answer", popup)
            assert "#learning on Slack" in _answers(joined)
            await until(lambda: len(discord.threads) == 1, "prompt 1 on Discord", popup)
            assert _discord_titles(discord)[0].startswith("Popup learning session")

            await slack_reply("prompt:1", "UADA", "Pairing on Slack")
            await discord.say(next(iter(discord.threads)), discord.max, "Reading the docs on Discord")
            await until(lambda: len(_replies(db)) == 2, "replies to prompt 1", popup)

            # A crash and a start again.
            await popup.kill()
            await popup.start()

            # Discord's API is down while prompt 2 goes out: Slack gets it at once, Discord later.
            discord.outage = True
            await slack_command("next")
            await until(lambda: ("prompt:2", 0) in _slack_keys(slack), "prompt 2 on Slack", popup)
            told = lambda: any(k[0].startswith("notice:outage:discord") for k in _slack_keys(slack))  # noqa: E731
            await until(told, "outage notice", popup)
            assert len(discord.threads) == 1
            discord.outage = False
            await until(lambda: len(discord.threads) == 2, "prompt 2 on Discord after the outage", popup)

            await slack_reply("prompt:2", "UADA", "Olga helped, on Slack")
            second_thread = max(discord.threads)
            await discord.say(second_thread, discord.max, "Max helped, on Discord")
            await until(lambda: len(_replies(db)) == 4, "replies to prompt 2", popup)

            await slack_command("stop")
            await wait_closed(db)
            await until(lambda: ("recap", 0) in _slack_keys(slack), "recap on Slack", popup)
            await until(
                lambda: any(t.startswith("Recap") for t in _discord_titles(discord)), "recap on Discord", popup
            )
        assert await popup.stop() == 0
    finally:
        if popup.running:
            await popup.kill()
        await slack.stop()
        await discord.close()

    # Nothing posted twice on either platform; one outage notice; one recap in each.
    slack_keys = _slack_keys(slack)
    assert all(count == 1 for count in slack_keys.values()), slack_keys
    notices = [k for k in slack_keys if k[0].startswith("notice")]
    assert notices == [(f"notice:outage:discord:{discord.channel_id}", 0)]
    footers = _discord_footers(discord)
    assert all(count == 1 for count in footers.values()), footers
    assert [t for t in _discord_titles(discord) if t.startswith("Recap")][:1] == ["Recap: Across platforms"]
    assert len([t for t in _discord_titles(discord) if t.startswith("Prompt ")]) == 2

    # The JSON export: each reply once, with its platform and channel.
    data = json.loads(await _cli("export", "1", "--config", str(config), "--format", "json"))
    replies = data["replies"]
    assert sorted((r["platform"], r["text"]) for r in replies) == [
        ("discord", "Max helped, on Discord"),
        ("discord", "Reading the docs on Discord"),
        ("slack", "Olga helped, on Slack"),
        ("slack", "Pairing on Slack"),
    ]
    assert len({r["id"] for r in replies}) == len({(r["platform"], r["message_id"]) for r in replies}) == 4
    assert all(r["channel"] for r in replies)
    assert [(c["platform"], c.get("name")) for c in data["session"]["channels"]] == [
        ("slack", "#learning"),
        ("discord", "#general"),
    ]
    article = await _cli("export", "1", "--config", str(config), "--format", "md")
    assert "The day ran in 2 channels on Discord and Slack" in article
    assert "#general on Discord" in article
