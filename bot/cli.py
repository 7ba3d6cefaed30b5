"""The ``popup`` command line (docs/architecture.md §9). Exit codes: 0 ok, 1 failure, 2 bad usage or config."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from bot.loop import run as run_loop
from sessions.errors import ConfigError, PopupError, StorageError
from sessions.files import OutputExists, private_file, private_folder, private_text
from storage.settings import StorageSettings

if TYPE_CHECKING:
    from sessions.recap.narrative import ProseModel

_log = logging.getLogger(__name__)

ExportFormat = Literal["md", "html", "json", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"popup: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="popup", description="Run popup learning sessions in Slack, Discord or the console.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser("demo", help="run a whole compressed session on the console")
    demo.add_argument("--out", type=Path, default=Path("popup-demo"), help="where the artifacts go (./popup-demo)")

    run = commands.add_parser("run", help="run every adapter enabled in the config until SIGINT/SIGTERM")
    run.add_argument("--config", type=Path, required=True)

    listing = commands.add_parser("sessions", help="list the sessions, one line each")
    _database_options(listing)
    listing.add_argument(
        "--stats", action="store_true", help="instead: the rows in the tables that grow with use, and the file's size"
    )

    export = commands.add_parser("export", help="write a session's article or data")
    export.add_argument("session_id", type=int, metavar="SESSION_ID")
    _database_options(export)
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    _force_option(export)

    migrate = commands.add_parser("migrate", help="bring the configured database to this Popup's schema")
    migrate.add_argument("--config", type=Path, required=True)

    copy = commands.add_parser("copy", help="move a community's data between databases (SQLite, PostgreSQL)")
    copy.add_argument("--from", dest="source", type=Path, required=True, metavar="CONFIG", help="from its [storage]")
    copy.add_argument("--to", dest="target", type=Path, required=True, metavar="CONFIG", help="into its [storage]")
    copy.add_argument("--force", action="store_true", help="replace what the target holds (default: refuse)")

    backup = commands.add_parser("backup", help="a consistent copy of the database, also while the bot runs")
    backup.add_argument("--config", type=Path, required=True)
    backup.add_argument("--out", type=Path, required=True)
    _force_option(backup)
    return parser


def _force_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace --out if it exists (default: refuse)")


def _database_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the configuration file (its [storage] path)")
    where.add_argument("--db", type=Path, help="a database file directly, e.g. popup-demo/popup-demo.db")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.logs import setup_logging

    try:
        if args.command == "demo":
            setup_logging("WARNING" if args.log_level == "INFO" else args.log_level)
            from bot.demo import run_demo

            try:
                folder = private_folder(args.out)
            except OSError as exc:
                raise ConfigError(f"--out {str(args.out)!r}: cannot make the folder: {exc.strerror or exc}") from exc
            return run_loop(run_demo(folder))
        if args.command == "run":
            from bot.app import run_until_signalled
            from bot.config import load_config

            config = load_config(args.config)
            setup_logging(args.log_level, config.secrets)
            run_loop(run_until_signalled(config))
            return 0
        setup_logging("WARNING" if args.log_level == "INFO" else args.log_level)
        if args.command == "sessions":
            if args.stats:
                return run_loop(_storage_stats(_database(args)))
            return run_loop(_sessions(_database(args)))
        if args.command == "export":
            model = _prose_model(args.config) if args.config is not None else None
            return run_loop(
                _export(_database(args), args.session_id, args.format, args.out, force=args.force, model=model)
            )
        if args.command == "backup":
            return run_loop(_backup(_database(args), args.out, force=args.force))
        if args.command == "migrate":
            return run_loop(_migrate(_storage(args.config)))
        if args.command == "copy":
            return run_loop(_copy(_storage(args.source), _storage(args.target), force=args.force))
    except (ConfigError, StorageError) as exc:
        print(f"popup: error: {exc}", file=sys.stderr)
        return 2
    except PopupError as exc:  # e.g. a platform that cannot be reached at start
        print(f"popup: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


def _database(args: argparse.Namespace) -> StorageSettings:
    if getattr(args, "db", None) is not None:
        path: Path = args.db
        if not path.is_file():
            raise ConfigError(f"--db {str(path)!r}: no such database file")
        return StorageSettings(path=path)
    return _storage(args.config)


def _prose_model(config_path: Path) -> ProseModel | None:
    """The ``[story]`` writer model of the config, if one is set."""
    from bot.config import load_config
    from bot.prose_model import prose_model

    return prose_model(load_config(config_path, secrets=False).story)


def _storage(config_path: Path) -> StorageSettings:
    from bot.config import load_config

    return load_config(config_path, secrets=False).storage


async def _sessions(database: StorageSettings) -> int:
    from sessions.compose import local_time
    from storage.open import open_store

    store = await open_store(database)
    try:
        for session in await store.list_sessions():
            stats = await store.session_stats(session.id)
            channels = ",".join(f"{c.platform}:{c.channel_id}" for c in session.channels)
            started = session.started_at.strftime("%Y-%m-%d ") + local_time(session.started_at, "UTC")
            print(
                f"{session.id}\t{session.plan_name}\t{session.state.value}\t{channels}\t"
                f"started {started} UTC\t{stats.replies} replies, {stats.participants} people\t{session.title}"
            )
    finally:
        await store.close()
    return 0


async def _storage_stats(database: StorageSettings) -> int:
    """One line per growing table (``rows TABLE N``), then the database's size on disk (the SQLite
    file and its log, or the PostgreSQL database on its server).

    ``deletions`` and ``inbound_events`` stay small while ``popup run`` prunes them (sessions/retention.py).
    """
    from storage.open import open_store

    store = await open_store(database)
    try:
        figures = await store.storage_figures()
    finally:
        await store.close()
    for table, count in figures.rows.items():
        print(f"rows\t{table}\t{count}")
    print(f"size\t{figures.size_bytes} bytes\t{figures.size_bytes / 1_000_000:.1f} MB\t{database.where}")
    return 0


class OutputFailed(PopupError):
    """``--out`` could not be written (exit 1); the message names it and why."""


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """``--out`` problems as one line each. An existing name is bad usage (exit 2, like a missing
    folder): the same command succeeds with ``--force`` or another path, before any work is done.
    A write that fails on the way (disk full, a folder in the way) is a failure (exit 1)."""
    if not out.parent.is_dir():
        raise ConfigError(f"--out {str(out)!r}: folder {str(out.parent)!r} does not exist")
    try:
        yield
    except OutputExists:
        raise ConfigError(f"--out {str(out)!r}: already exists; add --force to replace it") from None
    except OSError as exc:
        raise OutputFailed(f"--out {str(out)!r}: cannot write it: {exc.strerror or exc}") from exc


async def _export(
    database: StorageSettings,
    session_id: int,
    fmt: ExportFormat,
    out: Path | None,
    *,
    force: bool,
    model: ProseModel | None = None,
) -> int:
    from adapters.web.articles import published_export
    from sessions.recap.exports import export
    from storage.open import open_store

    store = await open_store(database)
    try:
        session = await store.get_session(session_id)
        if session is None:
            raise ConfigError(f"session {session_id}: no such session in {database.where} (see: popup sessions)")
        # Once an organiser has published the article on the web, that is the article.
        published = await published_export(store, session, fmt)
        if out is None:
            if published is not None:
                sys.stdout.write(published)
            else:
                await export(store, session, fmt, sys.stdout, model=model)
        else:
            with _writing(out), private_text(out, replace=force, newline="") as sink:
                if published is not None:
                    sink.write(published)
                else:
                    await export(store, session, fmt, sink, model=model)
    finally:
        await store.close()
    return 0


async def _backup(database: StorageSettings, out: Path, *, force: bool) -> int:
    from storage.sqlite import SqliteStore

    if database.is_postgres:
        raise ConfigError(
            "storage.url is set: popup backup copies a SQLite file; back up PostgreSQL with pg_dump, "
            "or popup copy into a SQLite config"
        )
    db_path = database.path
    store = await SqliteStore.open(db_path)
    try:
        with _writing(out):
            if out.exists() and out.samefile(db_path):
                raise ConfigError(f"--out {str(out)!r}: is the database being backed up")
            for journal in (Path(f"{out}-wal"), Path(f"{out}-journal")):
                # SQLite would play a journal left beside the name into the new copy, and corrupt it.
                if journal.exists():
                    raise ConfigError(f"--out {str(out)!r}: {journal.name} beside it belongs to a database")
            # Into a new private file beside --out, then renamed: never into what is there already.
            with private_file(out, replace=force) as copy:
                await store.backup(copy)
    except sqlite3.Error as exc:
        raise OutputFailed(f"--out {str(out)!r}: the backup failed: {exc}") from exc
    finally:
        await store.close()
    print(f"backed up {db_path} to {out}", file=sys.stderr)
    return 0


async def _migrate(database: StorageSettings) -> int:
    from storage.open import migrate_store

    before, now = await migrate_store(database)
    if before == now:
        print(f"{database.where}: schema {now}, the newest this Popup knows; nothing to do", file=sys.stderr)
    else:
        print(f"{database.where}: migrated from schema {before} to {now}", file=sys.stderr)
    return 0


async def _copy(source: StorageSettings, target: StorageSettings, *, force: bool) -> int:
    from storage.copy import copy_data

    if source.where == target.where:
        raise ConfigError(f"--from and --to name the same database ({source.where})")
    report = await copy_data(source, target, replace=force)
    print(f"copied {source.where} to {target.where}: {report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
