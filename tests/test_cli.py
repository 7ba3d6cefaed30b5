"""The real ``popup`` process: console sessions over stdin, SIGKILL and restart, the demo."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from tests.config_files import plan, write_config
from tests.process import PopupProcess, popup_command, posted_prompts, stored_replies
from tests.support import eventually

PLANS = [
    plan("long", "+1h", ("+0s", "What did you learn today?"), ("+30m", "What next?")),
    # The recap waits for `/popup stop`: the test ends the day once it has what it needs.
    plan("short", "+1h", ("+0s", "First prompt?"), ("+4s", "Second prompt?"), ("+6s", "Third prompt?")),
]


@pytest.fixture
def config(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    first = getattr(request, "param", "long")
    return write_config(tmp_path, session={"default_plan": first}, plans=PLANS, console={"enabled": True})


@pytest.mark.e2e
async def test_run_on_the_console_start_reply_stop(config: Path) -> None:
    popup = PopupProcess(config)
    await popup.start()
    try:
        await popup.type("/popup start")
        await popup.wait_output("Prompt 1 of 2")
        await popup.type("Reading other people's code 📚")
        await popup.type("Asking 'why' twice")
        await popup.type("/popup stop")
        await popup.wait_output("Recap: A long day")
        await popup.wait_output("closed; the recap is posted")
        assert "2 replies" in popup.out
        assert "Reading other people's code 📚 — you" in popup.out
        assert "closed; the recap is posted" in popup.out
    finally:
        assert await popup.stop() == 0
    assert stored_replies(config.parent / "popup.db") == ["Reading other people's code 📚", "Asking 'why' twice"]


@pytest.mark.e2e
async def test_backup_while_the_bot_runs(config: Path, tmp_path: Path) -> None:
    popup = PopupProcess(config)
    await popup.start()
    try:
        await popup.type("/popup start")
        await popup.wait_output("Prompt 1 of 2")
        for i in range(50):
            await popup.type(f"reply {i}")
        copy = tmp_path / "copy.db"
        backup = await popup_command("backup", "--config", str(config), "--out", str(copy))
        assert backup.code == 0, backup.err
        listing = await popup_command("sessions", "--db", str(copy))
        assert listing.out.startswith("1\tlong\trunning\tconsole:console\t")
    finally:
        assert await popup.stop() == 0
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
    assert oct(copy.stat().st_mode & 0o777) == "0o600"


@pytest.mark.e2e
@pytest.mark.parametrize("config", ["short"], indirect=True)
async def test_sigkill_mid_session_and_restart_loses_and_repeats_nothing(config: Path) -> None:
    db = config.parent / "popup.db"
    first = PopupProcess(config)
    await first.start()
    await first.type("/popup start")
    await first.wait_output("Prompt 1 of 3")
    typed = ["before the kill 1", "before the kill 2 \u202e", "before the kill 3"]
    for line in typed:
        await first.type(line)
    await eventually(lambda: len(stored_replies(db)) == len(typed), what="the replies stored")
    await first.kill()
    assert first.proc is not None
    assert first.proc.returncode == -signal.SIGKILL

    second = PopupProcess(config)
    await second.start()
    try:
        # Whichever run posted them, the last prompt is out before the day is ended.
        await eventually(lambda: posted_prompts(db) == 3, what="all three prompts posted")
        await second.type("/popup stop")
        await second.wait_output("Recap: A short day")
    finally:
        assert await second.stop() == 0
    both = first.out + second.out
    for once in ("Popup learning session: A short day", "Prompt 1 of 3", "Prompt 2 of 3", "Prompt 3 of 3", "Recap:"):
        assert both.count(once) == 1, (once, both)
    assert "3 replies" in second.out
    assert stored_replies(db) == typed
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT key, attempts FROM posts WHERE message_id IS NULL").fetchall() == []
        assert conn.execute("SELECT state FROM sessions").fetchall() == [("closed",)]


@pytest.mark.e2e
@pytest.mark.slow
async def test_the_demo_runs_a_whole_session(tmp_path: Path) -> None:
    demo = await popup_command("demo", "--out", str(tmp_path / "out"), cwd=tmp_path, within=60)
    text = demo.out
    assert demo.code == 0, demo.err
    assert text.count("Prompt ") >= 3
    assert "edited a reply" in text
    assert "deleted a reply" in text
    assert "Recap: Popup learning: who makes learning culture?" in text
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"article.md", "article.html", "chart.png"} <= written
