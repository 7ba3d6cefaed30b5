"""Exports of a session: the article (md, html), everything as JSON, every reply as CSV.

The JSON and CSV stream the replies straight from the store to the sink, so an export of a million
replies holds one batch in memory, not the session. :func:`write_artifacts` gathers the story once
and reads the replies once, writing the JSON and the CSV side by side.

The JSON is written by :mod:`sessions.recap.export_json` (its fields are listed there), the CSV by
:mod:`sessions.recap.export_csv`; what both write alike is :mod:`sessions.recap.export_fields`.

Anonymous sessions: nothing in an export leads back to a person. ``author`` is null, and no user
id or starter appears. A platform's channel id and message id together name a message, and so its
author; on Slack the message id *is* its timestamp to the microsecond, and a Discord id encodes
its millisecond. So per reply ``message_id`` and ``channel_id`` are null (empty in the CSV),
``channel`` is a stand-in numbered per export — ``channel-1``, ``channel-2``… in the order of the
session's channels, then of first appearance — and ``created_at``/``edited_at`` keep whole seconds.
The session's ``channels`` carry the same stand-ins, so a reader can still tell the replies of
two channels apart. What stays — the words and the time to the second — is what the article shows
anyway; anyone who can read the channel can match them there, but the export hands out no key.
In ordinary sessions ``channel`` is the channel id, the same as ``channel_id``.

Files (:func:`write_artifacts`) are private and never written through a symlink: see
:mod:`sessions.files`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal, TextIO

from sessions.files import private_bytes, private_folder, private_text
from sessions.recap.article import render_html, render_markdown
from sessions.recap.chart import render_chart
from sessions.recap.export_csv import CSV_COLUMNS as CSV_COLUMNS
from sessions.recap.export_csv import CsvRows
from sessions.recap.export_csv import neutralise as neutralise
from sessions.recap.export_json import SCHEMA_VERSION as SCHEMA_VERSION
from sessions.recap.export_json import JsonReplies
from sessions.recap.narrative import Narrative, ProseModel, gather_narrative
from sessions.recap.story import Story, gather_story
from sessions.recap.summary import Artifacts, render_artifacts
from sessions.records import SessionRecord
from sessions.store import Store

_log = logging.getLogger(__name__)

Format = Literal["md", "html", "json", "csv"]
FORMATS: tuple[Format, ...] = ("md", "html", "json", "csv")


# -- the public API -----------------------------------------------------------------------------


async def export(
    store: Store, session: SessionRecord, fmt: Format, sink: TextIO, *, model: ProseModel | None = None
) -> None:
    """Write the session in ``fmt`` to ``sink`` (streaming for json and csv); ``model`` is the
    optional writer model of the article's story."""
    if fmt == "csv":
        positions = {p.id: p.position for p in await store.prompts(session.id)}
        writer = CsvRows(sink, session, positions)
        async for reply in store.iter_replies(session.id):
            writer.write(reply)
        return
    story = await gather_story(store, session)
    narrative = await gather_narrative(store, story, model=None if fmt == "json" else model)
    if fmt == "json":
        json_out = JsonReplies(sink, story, narrative)
        async for reply in store.iter_replies(session.id):
            json_out.write(reply)
        json_out.close()
        return
    if fmt == "md":
        # No chart file travels with a single export, so the article does not point to one.
        sink.write(await asyncio.to_thread(render_markdown, story, chart_ref=None, narrative=narrative))
        return
    if fmt == "html":
        sink.write(await asyncio.to_thread(_html_page, story, narrative))
        return
    raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")


async def write_artifacts(
    store: Store, session: SessionRecord, folder: Path, *, model: ProseModel | None = None
) -> list[Path]:
    """Write article.md, article.html, chart.png, session.json and replies.csv into ``folder``.

    The folder is made private (0700) if it is missing; each file is private (0600), written beside
    its final name and moved into place (:mod:`sessions.files`), so a reader never sees half a file
    and an artifact made after ``/popup forget`` replaces the old one whole.
    """
    private_folder(folder)
    story = await gather_story(store, session)
    narrative = await gather_narrative(store, story, model=model)
    artifacts: Artifacts = await asyncio.to_thread(render_artifacts, story, chart_ref="chart.png", narrative=narrative)
    written: list[Path] = []
    for name, text in (("article.md", artifacts.markdown), ("article.html", artifacts.html)):
        with private_text(folder / name, replace=True) as text_file:
            text_file.write(text)
        written.append(folder / name)
    with private_bytes(folder / "chart.png", replace=True) as png_file:
        png_file.write(artifacts.chart_png)
    written.append(folder / "chart.png")

    positions = {p.prompt.id: p.prompt.position for p in story.prompts}
    # Both files move into place only once the one read of the replies that feeds them is done.
    with (
        private_text(folder / "session.json", replace=True) as json_file,
        private_text(folder / "replies.csv", replace=True, newline="") as csv_file,
    ):
        json_out = JsonReplies(json_file, story, narrative)
        csv_out = CsvRows(csv_file, session, positions)
        async for reply in store.iter_replies(session.id):
            json_out.write(reply)
            csv_out.write(reply)
        json_out.close()
    written += [folder / "session.json", folder / "replies.csv"]
    _log.info("artifacts of session %d written to %s", session.id, folder)
    return written


def _html_page(story: Story, narrative: Narrative) -> str:
    return render_html(story, chart_png=render_chart(story), narrative=narrative)
