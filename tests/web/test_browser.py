"""End to end in a real browser: headless Chromium (Debian's) driven by Playwright, over a real
``popup run`` on loopback with the console as the chat side and the web side on.

A participant answers on the page and sees another's answer arrive live; the organiser signs in
through the link from ``/popup web``, watches a reply arrive, posts the next prompt, stops the
session, edits and publishes the article, and the feed lists it. With ``POPUP_SCREENSHOTS`` set,
each page is saved there at phone and desktop sizes.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from tests.config_files import plan, write_config
from tests.process import PopupProcess, free_port
from tests.recap.test_browser import ARGS, _chromium
from tests.support import eventually

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

SECRET = "an-e2e-web-secret-0123456789"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}

DAY = plan(
    "day",
    "+2h",
    ("+0s", "What did you learn from a colleague this month?"),
    ("+1h", "Where does learning get stuck in our team?"),
    title="Who makes learning culture?",
    intro="A day of small questions about how we learn from each other.",
)


class WebPopup(PopupProcess):
    """``popup run`` with the console as its chat and the web side on a free port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        config = write_config(
            folder,
            session={"timezone": "Europe/Amsterdam"},
            plans=[DAY],
            console={"enabled": True},
            web={"enabled": True, "host": "127.0.0.1", "port": self.port},
        )
        super().__init__(config, {"POPUP_WEB_SECRET": SECRET})

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def answer_with(self, pattern: str) -> str:
        """The first group of ``pattern`` in what popup answered on the console, once it is there."""
        regex = re.compile(pattern)
        await eventually(lambda: regex.search(self.out) is not None, what=f"an answer matching {pattern}")
        found = regex.search(self.out)
        assert found is not None
        return found[1]


@pytest.fixture
async def popup(tmp_path: Path) -> AsyncIterator[WebPopup]:
    process = WebPopup(tmp_path)
    await process.start()
    try:
        yield process
    finally:
        assert await process.stop() == 0, process.stderr[-3000:]


class Shots:
    """Screenshots into POPUP_SCREENSHOTS at phone and desktop sizes (nothing saved when unset)."""

    def __init__(self) -> None:
        folder = os.environ.get("POPUP_SCREENSHOTS")
        self.folder = Path(folder) if folder else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[str] = []

    async def both(self, page: Any, name: str) -> None:
        if self.folder is None:
            return
        for size, label in ((PHONE, "phone"), (DESKTOP, "desktop")):
            await page.set_viewport_size(size)
            path = self.folder / f"{name}-{label}.png"
            await page.screenshot(path=str(path), full_page=True, caret="initial")  # "hide" injects a style
            self.taken.append(path.name)
        await page.set_viewport_size(PHONE)


def watch(page: Any, problems: list[str]) -> None:
    # A CSP violation shows as a console error: none may happen.
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text} at {m.location['url']}:{m.location['lineNumber']}")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


@pytest.mark.browser
@pytest.mark.e2e
async def test_participants_and_the_organiser_in_chromium(popup: WebPopup) -> None:
    executable = _chromium()
    from playwright.async_api import async_playwright, expect

    await popup.type("/popup start day")
    page_url = await popup.answer_with(r"anyone with it can answer\): (http://\S+)")
    shots = Shots()
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            ann_ctx = await browser.new_context(viewport=PHONE)
            bob_ctx = await browser.new_context(viewport=PHONE)
            olga_ctx = await browser.new_context(viewport=DESKTOP)
            ann, bob, olga = await ann_ctx.new_page(), await bob_ctx.new_page(), await olga_ctx.new_page()
            for page in (ann, bob, olga):
                watch(page, problems)

            # Two participants on the page; the first prompt is there.
            await ann.goto(page_url)
            await bob.goto(page_url)
            first = "What did you learn from a colleague this month?"
            await expect(ann.locator("article.prompt").first).to_contain_text(first)
            await expect(bob.locator("article.prompt").first).to_contain_text(first)
            await shots.both(bob, "participant-page")

            # Ann answers; Bob sees it arrive without reloading.
            form = ann.locator("form.answer").first
            await form.locator('input[name="name"]').fill("Ann")
            await form.locator('textarea[name="text"]').fill("Pairing on a bug taught me <more> than a course.")
            await form.locator('input[name="consent"]').check()
            await form.locator('button[type="submit"]').click()
            await expect(form.locator(".status")).to_have_text("Sent.")
            await expect(bob.locator("li.reply").first).to_contain_text("Pairing on a bug taught me <more>")
            await expect(ann.locator("li.reply.mine")).to_have_count(1)
            await shots.both(ann, "participant-answered")

            # The organiser asks in chat for a sign-in link, and signs in with it.
            await popup.type("/popup web")
            link = await popup.answer_with(r"sign-in link to the dashboard .*?: (http://\S+)")
            await olga.goto(link)
            await shots.both(olga, "sign-in")
            await olga.get_by_role("button", name="Sign in").click()
            await expect(olga.locator("h1")).to_have_text("Your sessions")
            await shots.both(olga, "dashboard")
            await olga.get_by_role("link", name="Who makes learning culture?").click()
            await expect(olga.locator("#live")).to_contain_text("Pairing on a bug")

            # A reply arrives while the organiser watches.
            form = bob.locator("form.answer").first
            await form.locator('input[name="name"]').fill("Bob")
            await form.locator('textarea[name="text"]').fill("Asking in the team channel, early.")
            await form.locator('input[name="consent"]').check()
            await form.locator('button[type="submit"]').click()
            await expect(olga.locator("#live")).to_contain_text("Asking in the team channel, early.")
            await shots.both(olga, "dashboard-session")

            # Next prompt from the dashboard: it reaches the participants' open pages.
            await olga.get_by_role("button", name="Post the next prompt").click()
            await expect(olga.locator(".said")).to_contain_text("Prompt 2 of 2 posted.")
            await expect(ann.locator("article.prompt")).to_have_count(2)
            await expect(ann.locator("article.prompt").nth(1)).to_contain_text("Where does learning get stuck")

            # Stop: the recap is posted; the article can be edited.
            await olga.get_by_role("button", name="Stop and post the recap").click()
            await expect(olga.locator(".said")).to_contain_text("closed; the recap is posted")
            await olga.get_by_role("link", name="Edit and publish the article").click()
            editor = olga.locator("textarea#markdown")
            await expect(editor).to_contain_text("Pairing on a bug")
            draft = await editor.input_value()
            await editor.fill("# Our popup day\n\nWhat we learnt, told by us.\n\n" + draft)
            await olga.get_by_role("button", name="Preview").click()
            await expect(olga.locator(".preview h1").first).to_have_text("Our popup day")
            await shots.both(olga, "article-editor")
            await olga.get_by_role("button", name="Publish").click()
            await expect(olga.locator(".said")).to_contain_text("published")

            # The public article, and the feed that lists it.
            reader = await (await browser.new_context(viewport=PHONE)).new_page()
            watch(reader, problems)
            await reader.goto(popup.base + "/")
            await reader.get_by_role("link", name="Who makes learning culture?").click()
            await expect(reader.locator("article h1").first).to_have_text("Our popup day")
            await expect(reader.locator("article")).to_contain_text("Pairing on a bug taught me <more>")
            assert await reader.locator('link[rel="alternate"][type="application/atom+xml"]').count() == 1
            await shots.both(reader, "public-article")
            await ann.reload()
            await expect(ann.locator("p.closed")).to_contain_text("answers are closed")
            await shots.both(ann, "participant-closed")
            assert await reader.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        finally:
            await browser.close()
    async with aiohttp.ClientSession() as http, http.get(popup.base + "/feed.xml") as response:
        feed = await response.text()
    assert "<title>Who makes learning culture?</title>" in feed
    assert "Our popup day" in feed
    assert problems == [], "\n".join(problems)
    if shots.taken:
        print("screenshots:", ", ".join(shots.taken))
