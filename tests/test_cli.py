"""The real ``popup`` process: console sessions over stdin, SIGKILL and restart, the demo."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.config_files import plan, write_config
from tests.postgres import new_database_sync
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


# -- files the command line writes: private, never through a symlink, never over a file unasked ---------------------


def popup_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``popup ARGS`` as a child process under the usual umask (022), its output collected."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        umask=0o022,
        check=False,
    )


def mode_of(path: Path) -> str:
    return oct(path.lstat().st_mode & 0o777)


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """The refusal or failure is one line on stderr that names what went wrong; no traceback."""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("popup: error: "), result.stderr
    assert all(word in result.stderr for word in words), result.stderr


@pytest.fixture
def day_db(tmp_path: Path) -> Path:
    """A database holding one session (number 1) with replies."""
    from storage.sqlite import SqliteStore
    from tests.recap.conftest import sample_day

    path = tmp_path / "popup.db"  # where the ``config`` fixture's [storage] path points

    async def build() -> None:
        store = await SqliteStore.open(path)
        try:
            await sample_day(store)
        finally:
            await store.close()

    asyncio.run(build())
    return path


@pytest.mark.e2e
def test_export_writes_a_private_file_and_refuses_to_overwrite_one(day_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.json"
    first = popup_cli("export", "1", "--db", day_db, "--format", "json", "--out", out)
    assert first.returncode == 0, first.stderr
    assert mode_of(out) == "0o600"
    assert '"replies"' in out.read_text(encoding="utf-8")

    out.write_text("keep me", encoding="utf-8")
    out.chmod(0o644)
    again = popup_cli("export", "1", "--db", day_db, "--format", "csv", "--out", out)
    assert again.returncode == 2
    one_line_error(again, "--out", str(out), "--force")
    assert out.read_text(encoding="utf-8") == "keep me"

    forced = popup_cli("export", "1", "--db", day_db, "--format", "csv", "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_text(encoding="utf-8").startswith("id,prompt,")
    assert mode_of(out) == "0o600"  # the old file's loose mode is not kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.json", "popup.db"]  # no temporary file left


@pytest.mark.e2e
def test_export_never_writes_through_a_symlink(day_db: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to(victim)
    refused = popup_cli("export", "1", "--db", day_db, "--format", "md", "--out", link)
    assert refused.returncode == 2
    one_line_error(refused, str(link))
    assert victim.read_text(encoding="utf-8") == "precious"

    forced = popup_cli("export", "1", "--db", day_db, "--format", "md", "--out", link, "--force")
    assert forced.returncode == 0, forced.stderr
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not link.is_symlink()  # the link itself was replaced by the export
    assert link.read_text(encoding="utf-8").startswith("# Who makes learning culture?")
    assert mode_of(link) == "0o600"

    # A dangling link would have created its target; it is refused like any other existing name.
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "created-elsewhere.html")
    result = popup_cli("export", "1", "--db", day_db, "--format", "html", "--out", dangling)
    assert result.returncode == 2
    assert not (tmp_path / "created-elsewhere.html").exists()


@pytest.mark.e2e
def test_export_failures_are_one_line_and_leave_nothing_behind(day_db: Path, tmp_path: Path) -> None:
    missing = popup_cli("export", "1", "--db", day_db, "--format", "md", "--out", tmp_path / "nowhere" / "day.md")
    assert missing.returncode == 2
    one_line_error(missing, "--out", "does not exist")

    folder = tmp_path / "a-folder"
    folder.mkdir()
    onto_folder = popup_cli("export", "1", "--db", day_db, "--format", "md", "--out", folder, "--force")
    assert onto_folder.returncode == 1
    one_line_error(onto_folder, "--out", str(folder))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "popup.db"]
    assert list(folder.iterdir()) == []


@pytest.mark.e2e
def test_backup_refuses_to_overwrite_and_replaces_only_when_forced(day_db: Path, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.db"
    out.write_text("not a database at all", encoding="utf-8")
    out.chmod(0o644)

    refused = popup_cli("backup", "--config", config, "--out", out)
    assert refused.returncode == 2
    one_line_error(refused, "--out", str(out), "--force")
    assert out.read_text(encoding="utf-8") == "not a database at all"

    forced = popup_cli("backup", "--config", config, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "Traceback" not in forced.stderr
    assert mode_of(out) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "copy.db", "popup.db"]
    with sqlite3.connect(out) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT count(*) FROM replies").fetchone() == (9,)


@pytest.mark.e2e
def test_backup_never_writes_through_a_symlink(day_db: Path, config: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.db"
    victim.write_bytes(b"someone else's file")
    link = tmp_path / "copy.db"
    link.symlink_to(victim)

    refused = popup_cli("backup", "--config", config, "--out", link)
    assert refused.returncode == 2
    one_line_error(refused, str(link))
    forced = popup_cli("backup", "--config", config, "--out", link, "--force")
    assert forced.returncode == 0, forced.stderr
    assert victim.read_bytes() == b"someone else's file"
    assert not link.is_symlink()
    assert mode_of(link) == "0o600"


@pytest.mark.e2e
def test_backup_will_not_replace_the_database_it_copies(day_db: Path, config: Path) -> None:
    before = day_db.read_bytes()
    result = popup_cli("backup", "--config", config, "--out", day_db, "--force")
    assert result.returncode == 2
    one_line_error(result, "--out", str(day_db))
    assert day_db.read_bytes() == before

    # Nor a database whose journal lies beside it: SQLite would play that journal into the copy.
    other = config.parent / "other.db"
    other.write_bytes(b"a database in use")
    Path(f"{other}-wal").write_bytes(b"its write-ahead log")
    refused = popup_cli("backup", "--config", config, "--out", other, "--force")
    assert refused.returncode == 2
    one_line_error(refused, "--out", "other.db-wal")
    assert other.read_bytes() == b"a database in use"


@pytest.mark.e2e
@pytest.mark.slow
def test_the_demo_folder_and_artifacts_are_private(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = popup_cli("demo", "--out", out)
    assert result.returncode == 0, result.stderr
    assert mode_of(out) == "0o700"
    modes = {p.name: mode_of(p) for p in out.iterdir()}
    assert {"article.md", "article.html", "chart.png", "session.json", "replies.csv"} <= set(modes)
    assert set(modes.values()) == {"0o600"}, modes


# -- what the database holds, for an operator ------------------------------------------------------------------------


@pytest.mark.e2e
def test_sessions_stats_shows_the_growing_tables_and_the_size_and_plain_sessions_is_unchanged(
    day_db: Path, config: Path
) -> None:
    listing = popup_cli("sessions", "--config", config)
    assert listing.returncode == 0, listing.stderr
    [line] = listing.stdout.splitlines()  # still one line per session, nothing more
    assert line == (
        "1\tlearning-culture\tscheduled\tslack:C1\tstarted 2026-06-01 07:00 UTC\t9 replies, 5 people\t"
        "Who makes learning culture?"
    )
    stats = popup_cli("sessions", "--db", day_db, "--stats")
    assert stats.returncode == 0, stats.stderr
    lines = stats.stdout.splitlines()
    rows = {parts[1]: int(parts[2]) for parts in (line.split("\t") for line in lines) if parts[0] == "rows"}
    assert rows["sessions"] == 1
    assert rows["replies"] == 9
    assert rows["reactions"] == 17
    assert rows["deletions"] == 0
    assert rows["inbound_events"] == 0
    [size] = [line.split("\t") for line in lines if line.startswith("size\t")]
    assert int(size[1].removesuffix(" bytes")) >= day_db.stat().st_size > 0
    assert size[3] == str(day_db)


# -- PostgreSQL: migrate, copy, and what stays SQLite-only -------------------------------------------


def postgres_config(tmp_path: Path, url: str, name: str = "pg.toml") -> Path:
    return write_config(tmp_path, name=name, storage={"url": url}, plans=PLANS, console={"enabled": True})


def test_migrate_brings_a_postgresql_database_to_the_schema_and_run_refuses_a_newer_one(
    tmp_path: Path, postgres_url: str
) -> None:
    import asyncpg

    from storage.postgres.migrate import migrations

    config = postgres_config(tmp_path, postgres_url)
    first = popup_cli("migrate", "--config", config)
    assert first.returncode == 0, first.stderr
    assert f"migrated from schema 0 to {migrations()[-1][0]}" in first.stderr
    again = popup_cli("migrate", "--config", config)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr

    async def from_the_future() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute("INSERT INTO schema_version (version) VALUES (999)")
        finally:
            await conn.close()

    asyncio.run(from_the_future())
    refused = popup_cli("run", "--config", config)
    assert refused.returncode == 2
    one_line_error(refused, "storage.url", "schema version 999 is newer than this Popup knows")


def copy_there_and_back(config: Path, tmp_path: Path, url: str) -> tuple[Path, Path]:
    """``popup copy`` from ``config``'s SQLite to the PostgreSQL ``url``, and from there to a new
    SQLite file in ``tmp_path/back``; the PostgreSQL config and the returned one."""
    pg = postgres_config(tmp_path, url)
    assert popup_cli("copy", "--from", config, "--to", pg).returncode == 0
    back = tmp_path / "back"
    back.mkdir()
    returned = back / "config.toml"
    returned.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")  # its popup.db, in back/
    home = popup_cli("copy", "--from", pg, "--to", returned)
    assert home.returncode == 0, home.stderr
    assert "verified by count and checksum" in home.stderr
    return pg, returned


def test_backup_is_for_sqlite_and_says_what_to_use_instead(tmp_path: Path) -> None:
    config = postgres_config(tmp_path, "postgresql://popup@127.0.0.1:9/popup")
    result = popup_cli("backup", "--config", config, "--out", tmp_path / "copy.db")
    assert result.returncode == 2
    one_line_error(result, "storage.url", "pg_dump")


def test_copy_sqlite_to_postgresql_and_back_keeps_every_row(day_db: Path, config: Path, tmp_path: Path) -> None:
    with new_database_sync() as url:
        pg, returned = copy_there_and_back(config, tmp_path, url)
        back = returned.parent
        refused = popup_cli("copy", "--from", config, "--to", pg)  # the target holds data now
        assert refused.returncode == 2
        one_line_error(refused, url, "--force")
        assert popup_cli("copy", "--from", config, "--to", pg, "--force").returncode == 0

        # The same sessions and the same export, byte for byte, from all three.
        listings = [popup_cli("sessions", "--config", c) for c in (config, pg, returned)]
        assert all(r.returncode == 0 for r in listings)
        assert listings[0].stdout == listings[1].stdout == listings[2].stdout != ""
        exports = [popup_cli("export", "1", "--config", c, "--format", "json") for c in (config, pg, returned)]
        assert exports[0].stdout == exports[1].stdout == exports[2].stdout
        assert '"replies"' in exports[0].stdout
        assert stored_replies(back / "popup.db") == stored_replies(day_db)


def test_copy_carries_the_web_side_and_sessions_stats_reads_either_store(
    day_db: Path, config: Path, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from sessions.web import ArticleVersion, StoredPlan, WebPost
    from storage.sqlite import SqliteStore

    WebSide = tuple[list[WebPost], list[StoredPlan], list[ArticleVersion], list[tuple[object, ...]]]

    at = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
    article = "# Our day\n\nQuoted as written: nul\x00inside, 👩🏽‍💻, עברית\n"

    async def web_side(path: Path, *, fill: bool) -> WebSide:
        store = await SqliteStore.open(path)
        try:
            if fill:
                await store.add_web_post("s1", "1:prompt:1", '{"text": "q"}', thread=True, at=at)
                await store.add_sign_in("hash", '{"id": "U1"}', expires_at=at)
                await store.save_web_plan(StoredPlan(name="webday", plan="{}", created_by="slack:U1", updated_at=at))
                await store.add_article_version(1, "draft", saved_by="slack:U1", at=at, publish=False)
                await store.add_article_version(1, article, saved_by="slack:U1", at=at, publish=True)
            return (
                await store.web_posts("s1"),
                await store.web_plans(),
                await store.article_versions(1),
                [tuple(row) for row in await store._all("SELECT * FROM web_sign_ins", ())],
            )
        finally:
            await store.close()

    asyncio.run(web_side(day_db, fill=True))
    with new_database_sync() as url:
        pg, returned = copy_there_and_back(config, tmp_path, url)
        back = returned.parent

        # The published article is the export from all three, byte for byte.
        exports = [popup_cli("export", "1", "--config", c, "--format", "md") for c in (config, pg, returned)]
        assert [e.stdout for e in exports] == [article] * 3
        # Every web row came back as it was.
        returned_web = asyncio.run(web_side(back / "popup.db", fill=False))
        assert returned_web == asyncio.run(web_side(day_db, fill=False))
        assert [len(rows) for rows in returned_web] == [1, 1, 2, 1]

        # `sessions --stats` reads either store: the same rows, and where the database is.
        stats = [popup_cli("sessions", "--config", c, "--stats") for c in (config, pg)]
        assert all(s.returncode == 0 for s in stats), [s.stderr for s in stats]
        rows = [[line for line in s.stdout.splitlines() if line.startswith("rows\t")] for s in stats]
        assert rows[0] == rows[1]
        assert "rows\treplies\t9" in rows[1]
        [size] = [line.split("\t") for line in stats[1].stdout.splitlines() if line.startswith("size\t")]
        assert int(size[1].removesuffix(" bytes")) > 0
        assert size[3] == url


def test_copy_carries_the_installs_and_the_channels_workspaces(day_db: Path, config: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sessions.installs import InstallRecord, WorkspaceKey
    from storage.sqlite import SqliteStore

    at = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
    installs = [
        InstallRecord(platform="slack", enterprise_id="", team_id="T1", org_wide=False, app_id="A1", bot_id="B1",
                      bot_user_id="U1", bot_token="fernet:sealed", scopes="commands", installed_by="U9",
                      installed_at=at, team_name="One"),
        InstallRecord(platform="slack", enterprise_id="E1", team_id="", org_wide=True, app_id="A1", bot_id="B2",
                      bot_user_id="U2", bot_token="fernet:sealed2", scopes="commands", installed_by="U9",
                      installed_at=at, enterprise_name="Org"),
    ]

    async def install_side(path: Path, *, fill: bool) -> tuple[list[InstallRecord], WorkspaceKey | None]:
        store = await SqliteStore.open(path)
        try:
            if fill:
                for record in installs:
                    await store.save_install(record)
                await store.note_channel_workspace("slack", "C1", WorkspaceKey(team_id="T1"))
            return await store.installs("slack"), await store.channel_workspace("slack", "C1")
        finally:
            await store.close()

    asyncio.run(install_side(day_db, fill=True))
    with new_database_sync() as url:
        _pg, returned = copy_there_and_back(config, tmp_path, url)
        got = asyncio.run(install_side(returned.parent / "popup.db", fill=False))
        assert got == (installs, WorkspaceKey(team_id="T1"))
