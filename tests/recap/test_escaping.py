"""No reply can inject markup, script, links, headings, mentions or spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions.model import ChannelRef
from sessions.recap import build_recap
from sessions.recap.article import md_escape
from sessions.recap.exports import export, neutralise
from storage.sqlite import SqliteStore
from tests.recap.conftest import new_day

HOSTILE = (
    "<script>alert('x')</script> and <img src=x onerror=alert(1)>",
    "[click me](javascript:alert(1)) ![img](http://evil.example/p.png)",
    "# Fake heading\n## Another\n---\n> quoted\n1. listed\n- bullet\n    code",
    "@everyone @here <!channel> <!here> <@U123> <#C123> **bold** _it_ `code` | a | b |",
    "=HYPERLINK(\"http://evil.example\",\"x\")",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1)",
    "\tstarts with a tab",
    "Fine text, \"quoted\", with a comma\nand a second line",
    "</p></li></ol><h1>broken out</h1>&amp; &lt;",
)


@pytest.fixture
async def hostile_day(store: SqliteStore):  # type: ignore[no-untyped-def]
    day = await new_day(store, prompts=("Say anything <b>bold</b>?",), title="Title with <script>1</script> [x](y)")
    for i, text in enumerate(HOSTILE):
        await day.reply(1, text, author=f"U{i}", name=f"<b>Name{i}</b> [n](javascript:1)", minutes=i)
    return day


async def test_html_is_inert(store: SqliteStore, hostile_day) -> None:  # type: ignore[no-untyped-def]
    recap = await build_recap(store, await hostile_day.fresh())
    html = recap.attachments[1].data.decode()
    assert "<script" not in html.lower()
    assert html.lower().count("<img") == 1
    assert '<img src="data:image/png;base64,' in html
    assert "<h1>broken out" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;!channel&gt;" in html
    assert "javascript:" not in re.sub(r">[^<]*<", "><", html)  # never inside a tag, only as text
    assert "script-src" not in html
    assert "default-src 'none'" in html


async def test_markdown_is_inert(store: SqliteStore, hostile_day) -> None:  # type: ignore[no-untyped-def]
    recap = await build_recap(store, await hostile_day.fresh())
    md = recap.attachments[0].data.decode()
    quoted = [line for line in md.splitlines() if line.startswith(">")]
    # Every line of every reply stays inside its blockquote, with its markup escaped.
    assert "> \\# Fake heading" in quoted
    assert "> \\---" in quoted  # neither a rule nor a setext underline any more
    assert "> \\> quoted" in quoted
    assert "> 1\\. listed" in quoted
    assert "> \\- bullet" in quoted
    assert "> \\[click me\\](javascript:alert(1)) !\\[img\\](http://evil.example/p.png)" in quoted
    assert re.search(r"(?<!\\)<", md) is None  # no raw HTML at all: every "<" is escaped
    ours = "![Chart: replies per prompt, and replies across the day]("
    assert md.count(ours) == 1
    # No other link can close: every "]" of member text is escaped.
    assert re.search(r"(?<!\\)\]\(", md.replace(ours, "")) is None
    assert "\n# Title with \\<script\\>1\\</script\\> \\[x\\](y)\n" in f"\n{md}"
    # Headings come only from the article: the title, the sections, never a reply.
    headings = [line for line in md.splitlines() if re.match(r"^#{1,6} ", line)]
    assert all(not h.startswith(("# Fake", "## Another")) for h in headings)
    # Names are escaped too.
    assert "\\<b\\>Name1\\</b\\> \\[n\\](javascript:1)" in md


def test_md_escape_units() -> None:
    assert md_escape("plain words, 3 of them.") == "plain words, 3 of them."
    assert md_escape("a*b_c`d") == "a\\*b\\_c\\`d"
    assert md_escape("  - indented bullet") == "  \\- indented bullet"
    assert md_escape("12) twelve") == "12\\) twelve"
    assert md_escape("x\r\n=== setext") == "x\n\\=== setext"
    assert md_escape("a & b < c") == "a \\& b \\< c"
    assert md_escape(None) == ""


async def test_mentions_stay_plain_text(store: SqliteStore, hostile_day) -> None:  # type: ignore[no-untyped-def]
    loud = await new_day(store, prompts=("Loud?",), channel=ChannelRef(platform="slack", channel_id="C2"))
    await loud.reply(1, "@everyone <!channel> <@U123> look at this", reactions=2)
    message = (await build_recap(store, await loud.fresh())).message
    # The message is neutral content: text travels verbatim and each adapter escapes it.
    assert [q.text for s in message.sections for q in s.quotes] == ["@everyone <!channel> <@U123> look at this"]
    recap = await build_recap(store, await hostile_day.fresh())
    html = recap.attachments[1].data.decode()
    md = recap.attachments[0].data.decode()
    assert "@everyone @here &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt;" in html
    assert "@everyone @here \\<!channel\\> \\<!here\\> \\<@U123\\>" in md


async def test_csv_neutralises_formulas_and_round_trips(store: SqliteStore, hostile_day) -> None:  # type: ignore[no-untyped-def]
    sink = io.StringIO(newline="")
    await export(store, await hostile_day.fresh(), "csv", sink)
    raw = sink.getvalue()
    assert raw.endswith("\r\n")
    assert raw.count("\r\n") >= len(HOSTILE) + 1
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert [r["text"] for r in rows] == [neutralise(t) for t in HOSTILE]
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    texts = {r["text"] for r in rows}
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in texts
    assert "'+SUM(1,2)" in texts
    assert "'-2+3" in texts
    assert "'@SUM(A1)" in texts
    assert "'\tstarts with a tab" in texts
    assert "Fine text, \"quoted\", with a comma\nand a second line" in texts  # quoting keeps it whole


def test_neutralise() -> None:
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("\r=1") == "'\r=1"
    assert neutralise("1=1") == "1=1"
    assert neutralise("") == ""


async def test_right_to_left_names_and_replies_are_isolated(store: SqliteStore) -> None:
    """A right-to-left name must not reorder the line it sits in (its reactions, its time)."""
    day = await new_day(store, prompts=("What helps?",))
    await day.reply(1, "قراءة الشيفرة مع زميل", author="U1", name="داليا", minutes=1)
    recap = await build_recap(store, await day.fresh())
    html = recap.attachments[1].data.decode()
    assert '<bdi class="author">داليا</bdi>' in html
    assert '<p class="text" dir="auto">قراءة الشيفرة مع زميل</p>' in html


FORMULA_TRIGGERS = "=+-@＝＋－＠"  # ASCII and their full-width forms, which spreadsheets also run
WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def test_neutralise_sees_through_leading_whitespace_and_full_width_signs() -> None:
    assert neutralise("\n=1+1") == "'\n=1+1"
    assert neutralise("\nplain") == "'\nplain"  # a leading line break, like CR and tab
    assert neutralise(" =1+1") == "' =1+1"
    assert neutralise("\u00a0\u3000@SUM(A1)") == "'\u00a0\u3000@SUM(A1)"
    assert neutralise("＝1+1") == "'＝1+1"
    assert neutralise("＋1") == "'＋1"
    assert neutralise("－1") == "'－1"
    assert neutralise("＠SUM(A1)") == "'＠SUM(A1)"
    assert neutralise("  plain, then =1") == "  plain, then =1"
    assert neutralise("   ") == "   "


@given(lead=st.text(alphabet=WHITESPACE), trigger=st.sampled_from(FORMULA_TRIGGERS), rest=st.text())
def test_a_formula_behind_any_whitespace_is_neutralised(lead: str, trigger: str, rest: str) -> None:
    cell = lead + trigger + rest
    assert neutralise(cell) == "'" + cell


@given(st.text(alphabet=st.characters(codec="utf-8")) | st.text(alphabet=WHITESPACE + FORMULA_TRIGGERS + "a1 "))
def test_a_cell_is_kept_byte_exact_or_only_prefixed(cell: str) -> None:
    out = neutralise(cell)
    first = cell.lstrip()[:1]
    if cell[:1] in ("\t", "\r", "\n") or (first and first in FORMULA_TRIGGERS):
        assert out == "'" + cell
    else:
        assert out == cell


async def test_csv_cells_with_hidden_formulas_come_out_neutralised(store: SqliteStore) -> None:
    day = await new_day(store, prompts=("Formulas?",))
    hidden = ["\n=1+1", " =1+1", "\u3000+SUM(1,2)", "＝HYPERLINK(\"http://evil.example\")", "＠SUM(A1)", "－2+3"]
    for i, text in enumerate(hidden):
        await day.reply(1, text, author=f"U{i}", name=f" =Name{i}", minutes=i)
    sink = io.StringIO(newline="")
    await export(store, await day.fresh(), "csv", sink)
    rows = list(csv.DictReader(io.StringIO(sink.getvalue(), newline="")))
    assert [r["text"] for r in rows] == ["'" + t for t in hidden]
    assert [r["author"] for r in rows] == [f"' =Name{i}" for i in range(len(hidden))]
