"""The engine with two outlets, the console and the real e-mail adapter, on a real SQLite file."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from adapters.console import ConsoleAdapter
from adapters.email.adapter import EmailAdapter
from adapters.email.settings import EmailSettings
from sessions.engine import Engine, EngineSettings
from sessions.model import CommandInvoked, CommandReply, MessageEvent
from sessions.plans import Plan
from sessions.records import ReplyRecord
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore
from tests.email.servers import Dovecot, Smtp
from tests.support import eventually, offset_plan

WITHIN = 20.0  # seconds: a ceiling for Dovecot and the SMTP server on a loaded machine, not a speed


def day_plan() -> Plan:
    """Prompt 1 at once, prompt 2 and the recap later: ``next`` and ``stop`` move the day along."""
    return offset_plan("day", prompts=("+0s", "+1h"), recap="+2h")


class FlakyHandler:
    """The engine, failing the first ``failures`` inbound events as a full disk would."""

    def __init__(self, engine: Engine, failures: int) -> None:
        self._engine = engine
        self.failures = failures

    async def on_command(self, command: CommandInvoked) -> CommandReply:
        return await self._engine.on_command(command)

    async def on_event(self, event: MessageEvent) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        await self._engine.on_event(event)


@dataclass
class MailRig:
    store: SqliteStore
    engine: Engine
    console: ConsoleAdapter
    email: EmailAdapter
    smtp: Smtp
    dovecot: Dovecot
    out: io.StringIO

    @classmethod
    async def start(cls, db: Path, settings: EmailSettings, smtp: Smtp, dovecot: Dovecot, *,
                    failures: int = 0, **adapter: object) -> MailRig:
        store = await SqliteStore.open(db)
        out = io.StringIO()
        console = ConsoleAdapter(out=out)
        email = EmailAdapter(settings, retry_seconds=0.2, **adapter)  # type: ignore[arg-type]
        engine = Engine(
            store=store, ports={"console": console, "email": email}, plans=[day_plan()],
            settings=EngineSettings(default_plan="day", retry_delays=(0.2,)), wakeups=Wakeups(), clock=utc_now,
        )
        await console.start(engine)
        await email.start(FlakyHandler(engine, failures) if failures else engine)
        await engine.start()
        return cls(store=store, engine=engine, console=console, email=email, smtp=smtp, dovecot=dovecot, out=out)

    async def close(self) -> None:
        await self.engine.stop()
        await self.email.stop()
        await self.console.stop()
        await self.store.close()

    async def say(self, line: str) -> str:
        return await self.console.command(line)

    async def start_with_list(self) -> None:
        """Session #1 started on the console, the list ``learning`` invited to it."""
        assert (await self.say("/popup start day")).startswith("Started session #1")
        answer = await self.say("/popup invite email:learning")
        assert answer.startswith("Invited the list learning to session #1"), answer

    def sent(self, subject_part: str) -> list[EmailMessage]:
        return [mail for mail in self.smtp.handler.parsed() if subject_part in str(mail["Subject"])]

    async def mail(self, subject_part: str) -> EmailMessage:
        await eventually(lambda: bool(self.sent(subject_part)), WITHIN, what=f"a mail with {subject_part!r}")
        return self.sent(subject_part)[0]

    async def replies(self, session_id: int = 1) -> list[ReplyRecord]:
        return [reply async for reply in self.store.iter_replies(session_id)]

    async def wait_replies(self, count: int, session_id: int = 1) -> list[ReplyRecord]:
        async def stored() -> bool:
            return len(await self.replies(session_id)) >= count

        await eventually(stored, WITHIN, what=f"{count} replies stored")
        return await self.replies(session_id)

    async def append(self, *mails: EmailMessage | bytes) -> None:
        await asyncio.to_thread(self.dovecot.append, *mails)

    async def flags(self) -> dict[str, set[str]]:
        return await asyncio.to_thread(self.dovecot.flags_by_message_id)

    async def seen(self, message_id: str) -> None:
        """Wait until the mail ``message_id`` is flagged seen in the folder."""

        async def flagged() -> bool:
            return "\\Seen" in (await self.flags()).get(message_id, set())

        await eventually(flagged, WITHIN, what=f"{message_id} seen")
