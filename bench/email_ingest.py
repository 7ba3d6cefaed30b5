"""E-mail: replies waiting in the IMAP folder stored, and one prompt fanned out to many lists.

Against real servers, as in the e-mail tests: Dovecot (IMAP) with a private configuration on a free
port, and aiosmtpd (SMTP) playing the lists. The bot is the engine with the console and the real
:class:`adapters.email.adapter.EmailAdapter` on the SQLite store.

* Ingest: ``--mails`` (2,000) answers to a prompt wait unseen in the folder; the figure is the time
  from starting the adapter until every one is durably stored (each once). Baseline in the same
  run: the same mails only fetched (UID SEARCH and UID FETCH in the same batches, nothing parsed or
  stored), the floor any IMAP reader pays.
* Fan-out: a session with ``--lists`` (50) lists invited; the figure is the time from ``/popup next``
  until the SMTP server has taken the prompt for every list. Baseline: the same number of ready
  mails sent back to back on one SMTP connection.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit, flag

PLAN_PROMPTS = ("+0s", "+1h")


async def _ingest(mails: int, folder: Path) -> dict[str, Any]:
    import aioimaplib

    from adapters.console import ConsoleAdapter
    from adapters.email.adapter import EmailAdapter
    from adapters.email.settings import EmailSettings, MailingList
    from sessions.engine import Engine, EngineSettings
    from sessions.wakeups import Wakeups, utc_now
    from storage.sqlite import SqliteStore
    from tests.email import mails as shapes
    from tests.email.servers import PASSWORD, USER, Dovecot, ListServer, Smtp
    from tests.support import offset_plan

    dovecot = Dovecot.start()
    smtp = Smtp.start(ListServer(list_addresses={"learning@lists.example.org"}))
    try:
        settings = EmailSettings(
            enabled=True, address="popup@example.org", smtp_port=smtp.port, smtp_tls="none",
            imap_port=dovecot.port, imap_tls="none", imap_user=USER, imap_password=PASSWORD,
            lists=(MailingList(name="learning", address="learning@lists.example.org"),),
        )
        store = await SqliteStore.open(folder / "ingest.db")
        console = ConsoleAdapter(out=io.StringIO())
        sender = EmailAdapter(settings)  # posts only: its reader is never started
        engine = Engine(
            store=store, ports={"console": console, "email": sender}, plans=[offset_plan("day", PLAN_PROMPTS, "+2h")],
            settings=EngineSettings(default_plan="day"), wakeups=Wakeups(), clock=utc_now,
        )
        await console.start(engine)
        await engine.start()
        await console.command("/popup start day")
        await console.command("/popup invite email:learning")
        # Prompt 1 is due at once, but its wake-up may post it a moment after the invite.
        while not (prompts := [m for m in smtp.handler.parsed() if "1/2:" in str(m["Subject"])]):
            await asyncio.sleep(0.01)
        prompt = prompts[0]
        raws = [
            shapes.gmail_reply(prompt, name=f"Member {i}", address=f"m{i}@example.net",
                               text=f"Reply {i}: what I learned today is to ask early").as_bytes()
            for i in range(mails)
        ]
        await asyncio.to_thread(dovecot.append, *raws)

        # The floor: fetching them, and nothing else.
        client = aioimaplib.IMAP4(host="127.0.0.1", port=dovecot.port, timeout=60)
        await client.wait_hello_from_server()
        await client.login(USER, PASSWORD)
        await client.select("INBOX")
        started = time.perf_counter()
        found = await client.uid_search("UNSEEN")
        uids = bytes(found.lines[0]).split()
        for start in range(0, len(uids), 200):
            await client.uid("fetch", b",".join(uids[start : start + 200]).decode(), "(UID BODY.PEEK[])")
        fetch_s = time.perf_counter() - started
        await client.logout()

        reader = EmailAdapter(settings)
        started = time.perf_counter()
        await reader.start(engine)
        while (await store.session_stats(1)).replies < mails:
            await asyncio.sleep(0.01)
        ingest_s = time.perf_counter() - started
        await asyncio.sleep(0.2)  # anything stored twice would show now
        stored = (await store.session_stats(1)).replies
        await reader.stop()
        await engine.stop()
        await sender.stop()
        await store.close()
    finally:
        smtp.stop()
        dovecot.stop()
    return {"mails": mails, "stored": stored, "ingest_s": ingest_s, "per_s": mails / ingest_s,
            "fetch_s": fetch_s, "ratio": ingest_s / fetch_s}


async def _fan_out(lists: int, folder: Path) -> dict[str, Any]:
    import aiosmtplib

    from adapters.console import ConsoleAdapter
    from adapters.email import compose, ids
    from adapters.email.adapter import EmailAdapter
    from adapters.email.settings import EmailSettings, MailingList
    from sessions.engine import Engine, EngineSettings
    from sessions.model import Message
    from sessions.wakeups import Wakeups, utc_now
    from storage.sqlite import SqliteStore
    from tests.email.servers import ListServer, Smtp
    from tests.support import offset_plan

    configured = tuple(MailingList(name=f"list{i}", address=f"list{i}@lists.example.org") for i in range(lists))
    smtp = Smtp.start(ListServer(list_addresses={item.address for item in configured}))
    try:
        # The bot never reads here: an IMAP port nobody listens on is only tried and retried.
        settings = EmailSettings(enabled=True, address="popup@example.org", smtp_port=smtp.port, smtp_tls="none",
                                 imap_port=1, imap_tls="none", imap_user="x", imap_password="x", lists=configured)
        store = await SqliteStore.open(folder / "fanout.db")
        console = ConsoleAdapter(out=io.StringIO())
        email = EmailAdapter(settings)
        engine = Engine(
            store=store, ports={"console": console, "email": email}, plans=[offset_plan("day", PLAN_PROMPTS, "+2h")],
            settings=EngineSettings(default_plan="day"), wakeups=Wakeups(), clock=utc_now,
        )
        await console.start(engine)
        await engine.start()
        await console.command("/popup start day")
        for item in configured:
            await console.command(f"/popup invite email:{item.name}")

        def second_prompts() -> int:
            with smtp.handler.lock:
                return sum(1 for _, _, raw in smtp.handler.mails if b"2/2:" in raw)

        started = time.perf_counter()
        await console.command("/popup next")
        while second_prompts() < lists:
            await asyncio.sleep(0.002)
        fan_out_s = time.perf_counter() - started
        await engine.stop()
        await email.stop()
        await store.close()

        # The floor: as many ready mails, back to back on one connection.
        ready = [
            compose.compose_mail(Message(title="Prompt 2 of 2", body="Who taught you the most?"),
                                 own=ids.own_id(f"base:{i}", list_name=item.name, thread=True, domain="example.org"),
                                 sender=settings.address, to=item.address, at=utc_now())
            for i, item in enumerate(configured)
        ]
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, start_tls=False)
        await client.connect()
        started = time.perf_counter()
        for mail, item in zip(ready, configured, strict=True):
            await client.sendmail(settings.address, [item.address], mail.as_bytes(policy=mail.policy))
        send_s = time.perf_counter() - started
        await client.quit()
    finally:
        smtp.stop()
    return {"lists": lists, "fan_out_s": fan_out_s, "send_s": send_s, "ratio": fan_out_s / send_s}


def run(mails: int = 2000, lists: int = 50) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="popup-bench-email-") as tmp:
        ingest = asyncio.run(_ingest(mails, Path(tmp)))
        fan_out = asyncio.run(_fan_out(lists, Path(tmp)))
    return {"ingest": ingest, "fan_out": fan_out}


def report(result: dict[str, Any]) -> str:
    ingest, fan_out = result["ingest"], result["fan_out"]
    return (
        f"email ingest: {ingest['stored']:,} of {ingest['mails']:,} waiting mails stored in {ingest['ingest_s']:.2f} s "
        f"({ingest['per_s']:.0f}/s; fetching alone {ingest['fetch_s']:.2f} s, {ingest['ratio']:.1f}x); "
        f"fan-out to {fan_out['lists']} lists {fan_out['fan_out_s']:.2f} s (sending alone {fan_out['send_s']:.2f} s, "
        f"{fan_out['ratio']:.1f}x)"
    )


if __name__ == "__main__":
    figures = run(mails=flag("mails", 2000), lists=flag("lists", 50))
    print(report(figures), flush=True)
    emit(figures)
