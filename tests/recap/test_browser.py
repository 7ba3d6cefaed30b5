"""The HTML article in a real browser: headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sessions.recap.exports import write_artifacts
from storage.sqlite import SqliteStore
from tests.recap.conftest import sample_day

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found is None:
        # CI sets POPUP_REQUIRE_BROWSER=1 after installing chromium: there, absence is a failure.
        if os.environ.get("POPUP_REQUIRE_BROWSER") == "1":
            pytest.fail("POPUP_REQUIRE_BROWSER=1 but no chromium at /usr/bin/chromium or on PATH")
        pytest.skip("no chromium installed (set POPUP_REQUIRE_BROWSER=1 to make this a failure)")
    return found


@pytest.mark.browser
async def test_article_renders_in_chromium(store: SqliteStore, tmp_path: Path) -> None:
    executable = _chromium()
    from playwright.async_api import async_playwright

    day = await sample_day(store)
    await day.reply(1, "Multi-line\n  with <b>markup</b> & @everyone <!channel>", author="U9", minutes=30)
    await write_artifacts(store, await day.fresh(), tmp_path / "out")
    page_file = tmp_path / "out" / "article.html"

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True, args=ARGS
        )
        try:
            page = await context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            await page.set_viewport_size({"width": 390, "height": 844})  # a phone
            await page.goto(page_file.as_uri(), wait_until="load")
            body = await page.inner_text("body")
            for text in day.texts.values():
                assert text in body, text
            chart_ok = await page.evaluate(
                "() => { const i = document.querySelector('figure img'); return i.complete && i.naturalWidth > 0; }"
            )
            assert chart_ok, "the embedded chart did not decode"
            assert await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert await page.evaluate("() => document.querySelectorAll('script').length") == 0
            shot = Path(os.environ.get("POPUP_SCREENSHOT_DIR", tmp_path)) / "article.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            await page.emulate_media(media="print")
            assert await page.evaluate("() => getComputedStyle(document.querySelector('nav')).display") == "none"
            assert problems == []
        finally:
            await context.close()
