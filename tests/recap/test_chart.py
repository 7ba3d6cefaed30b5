"""The participation chart: a PNG of the counts given, whatever their size, with only our labels.

The pixel tests read the picture back: bars and stacks are found by colour on the plots'
baselines, so they check what is drawn against the counts without knowing the layout.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageDraw

from sessions.compose import local_time
from sessions.recap import chart
from sessions.recap.chart import _COLOURS, _axis, _time_ticks, chart_of_counts
from sessions.recap.story import Counts, Timeline
from sessions.records import PromptRecord, PromptState

RGB: list[tuple[int, ...]] = [(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for c in _COLOURS]
AXIS = (113, 128, 150)
AMSTERDAM = "Europe/Amsterdam"


def counts_of(
    rows: Sequence[Sequence[int]],
    *,
    tz: str = AMSTERDAM,
    start: tuple[int, int] = (9, 0),
    width: timedelta = timedelta(minutes=15),
    bins: int | None = None,
) -> Counts:
    """Counts for prompts 1..len(rows) with ``rows[i][b]`` replies to prompt i+1 in bin b, bins
    aligned to ``start`` on the local clock as story.py aligns them."""
    bins = len(rows[0]) if rows else (1 if bins is None else bins)
    origin = datetime(2026, 6, 1, *start, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    prompts = tuple(
        PromptRecord(
            id=100 + i,
            session_id=1,
            position=i + 1,
            text=f"Secret prompt text {i}?",
            due_at=origin + timedelta(hours=i),
            state=PromptState.POSTED,
        )
        for i in range(len(rows))
    )
    timeline = Timeline(
        origin=origin,
        width=width,
        labels=tuple(local_time(origin + width * b, tz) for b in range(bins)),
        counts=tuple(tuple(row) for row in rows),
    )
    return Counts(
        prompts=prompts, timeline=timeline, totals={p.id: (sum(r), 0) for p, r in zip(prompts, rows, strict=True)}
    )


class Pixels:
    """The decoded chart, read pixel by pixel."""

    def __init__(self, png: bytes) -> None:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        assert image.size == (800, 640)
        self.width, self.height = image.size
        self.colours = {colour for _, colour in image.convert("RGB").getcolors(1 << 20) or ()}
        self._data = image.convert("RGB").tobytes()

    def __getitem__(self, xy: tuple[int, int]) -> tuple[int, ...]:
        i = 3 * (xy[1] * self.width + xy[0])
        return tuple(self._data[i : i + 3])


def baseline(pixels: Pixels, top: int, bottom: int) -> int:
    """The row between ``top`` and ``bottom`` with the most axis colour: a plot's x axis."""
    return max(range(top, bottom), key=lambda y: sum(pixels[x, y] == AXIS for x in range(pixels.width)))


def columns(pixels: Pixels, y: int) -> list[tuple[int, int]]:
    """(first x, last x) of each run of prompt colours along row ``y``."""
    runs: list[tuple[int, int]] = []
    for x in range(pixels.width):
        if pixels[x, y] in RGB:
            if runs and runs[-1][1] == x - 1 and pixels[x - 1, y] == pixels[x, y]:
                runs[-1] = (runs[-1][0], x)
            else:
                runs.append((x, x))
    return runs


def stack(pixels: Pixels, x: int, y: int) -> list[tuple[int, int]]:
    """(colour index, height in pixels) of the coloured runs going up from ``(x, y)``."""
    out: list[tuple[int, int]] = []
    while y >= 0 and pixels[x, y] in RGB:
        colour = RGB.index(pixels[x, y])
        if out and out[-1][0] == colour:
            out[-1] = (colour, out[-1][1] + 1)
        else:
            out.append((colour, 1))
        y -= 1
    return out


def assert_bars_are(png: bytes, replies: Sequence[int]) -> None:
    pixels = Pixels(png)
    y = baseline(pixels, 0, pixels.height // 2)
    bars = columns(pixels, y - 1)
    drawn = [c for c in replies if c]
    assert len(bars) == len(drawn)
    heights = [stack(pixels, (x0 + x1) // 2, y - 1) for x0, x1 in bars]
    assert [h[0][0] for h in heights] == [i % len(RGB) for i, c in enumerate(replies) if c]
    per_reply = heights[drawn.index(max(drawn))][0][1] / max(drawn)
    for (_, height), count in zip((h[0] for h in heights), drawn, strict=True):
        assert abs(height - count * per_reply) <= 1


def assert_stacks_are(png: bytes, rows: Sequence[Sequence[int]]) -> None:
    pixels = Pixels(png)
    y = baseline(pixels, pixels.height // 2, pixels.height)
    axis = [x for x in range(pixels.width) if pixels[x, y] == AXIS]
    left, right = axis[0], axis[-1] + 1
    bins = len(rows[0])
    totals = [sum(column) for column in zip(*rows, strict=True)]
    found = {int(((x0 + x1) / 2 - left) / ((right - left) / bins)): (x0 + x1) // 2 for x0, x1 in columns(pixels, y - 1)}
    assert sorted(found) == [b for b, total in enumerate(totals) if total]
    per_reply = sum(h for _, h in stack(pixels, found[totals.index(max(totals))], y - 1)) / max(totals)
    for b, x in found.items():
        segments = stack(pixels, x, y - 1)
        assert [colour for colour, _ in segments] == [i % len(RGB) for i, row in enumerate(rows) if row[b]]
        # Each segment's top is where its running total puts it, to the pixel.
        expected = [sum(row[b] for row in rows[: i + 1]) for i, row in enumerate(rows) if row[b]]
        tops = [sum(h for _, h in segments[: k + 1]) for k in range(len(segments))]
        for top, running in zip(tops, expected, strict=True):
            assert abs(top - running * per_reply) <= 1


SMALL = [
    [1, 0, 1, 0, 0, 0, 1, 1],
    [0, 0, 0, 1, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 3, 2, 1],
]


def test_small_session_draws_its_counts() -> None:
    png = chart_of_counts(counts_of(SMALL, width=timedelta(minutes=30)), AMSTERDAM)
    assert_bars_are(png, [sum(r) for r in SMALL])
    assert_stacks_are(png, SMALL)


def test_a_million_replies_draw_to_scale() -> None:
    # No segment under ~1% of the tallest stack: one that rounds to no pixel would not be found.
    rows = [[10_000 * ((b * 7 + p * 3) % 5 + 1) * (b % 4 != p % 4) for b in range(48)] for p in range(6)]
    counts = counts_of(rows)
    assert sum(sum(r) for r in rows) > 1_000_000
    png = chart_of_counts(counts, AMSTERDAM)
    assert_bars_are(png, [sum(r) for r in rows])
    assert_stacks_are(png, rows)


def test_prompts_without_replies_have_no_bar_and_no_segment() -> None:
    rows = [[0, 0, 0, 0], [2, 0, 5, 1], [0, 0, 0, 0], [0, 4, 0, 3]]
    png = chart_of_counts(counts_of(rows), AMSTERDAM)
    assert_bars_are(png, [sum(r) for r in rows])
    assert_stacks_are(png, rows)
    colours = Pixels(png).colours
    assert RGB[0] not in colours  # not even in the legend
    assert RGB[2] not in colours


def test_same_counts_same_bytes() -> None:
    counts = counts_of(SMALL)
    assert chart_of_counts(counts, AMSTERDAM) == chart_of_counts(counts, AMSTERDAM)


@pytest.mark.parametrize(
    "counts",
    [
        counts_of([], bins=0),  # no prompts at all
        counts_of([], bins=1),
        counts_of([[0], [0], [0]]),  # prompts, no replies: story.py still gives one bin
    ],
    ids=["no-prompts-no-bins", "no-prompts", "no-replies"],
)
def test_empty_sessions_draw(counts: Counts) -> None:
    assert not Pixels(chart_of_counts(counts, AMSTERDAM)).colours & set(RGB)


def test_one_bin() -> None:
    rows = [[4], [1]]
    png = chart_of_counts(counts_of(rows, width=timedelta(seconds=10)), AMSTERDAM)
    assert_bars_are(png, [4, 1])
    assert_stacks_are(png, rows)


@pytest.mark.parametrize("prompts", [10, 40])
def test_many_prompts_across_48_bins(prompts: int) -> None:
    rows = [[(p * 31 + b * 17) % 23 for b in range(48)] for p in range(prompts)]
    png = chart_of_counts(counts_of(rows), AMSTERDAM)
    Pixels(png)
    if prompts <= len(RGB):
        assert_stacks_are(png, rows)


def test_kathmandu_times_are_local_and_round() -> None:
    # +05:45: bins aligned to the local clock must be labelled on local whole hours, not UTC's.
    rows = [[(b % 5) + 1 for b in range(48)], [b % 3 for b in range(48)]]
    counts = counts_of(rows, tz="Asia/Kathmandu", start=(8, 0))
    ticks = _time_ticks(counts.timeline, "Asia/Kathmandu", 15.0, lambda s: 7.0 * len(s))
    labels = [label for _, label in ticks]
    assert labels[0] == "08:00"
    assert all(re.fullmatch(r"\d\d:00", label) for label in labels), labels
    assert ticks[-1] == (48, "20:00")  # the end of the last bin, in Kathmandu
    png = chart_of_counts(counts, "Asia/Kathmandu")
    assert_stacks_are(png, rows)


def test_second_bins_are_labelled_on_round_seconds() -> None:
    counts = counts_of([[1] * 40], start=(9, 0), width=timedelta(seconds=10))
    labels = [label for _, label in _time_ticks(counts.timeline, AMSTERDAM, 18.0, lambda s: 7.0 * len(s))]
    assert labels[:3] == ["09:00", "09:01", "09:02"]  # a label every minute: local_time drops ":00"


def test_only_our_labels_are_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    text = ImageDraw.ImageDraw.text

    def spy(self: ImageDraw.ImageDraw, xy: object, value: str, *args: object, **kwargs: object) -> None:
        drawn.append(value)
        text(self, xy, value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    for rows in (SMALL, [[(p + b) % 4 for b in range(48)] for p in range(40)], []):
        chart_of_counts(counts_of(rows), AMSTERDAM)
    ours = re.compile(
        r"Replies per prompt|Replies across the day \(Europe/Amsterdam\)|Replies|Prompt|Prompt \d+|\d+|"
        r"[\d,]+|\d+(\.\d+)?[kM]|\d\d:\d\d(:\d\d)?|No prompts|No replies|\+\d+ more"
    )
    assert drawn
    assert [s for s in drawn if not ours.fullmatch(s)] == []


@pytest.mark.parametrize("peak", [*range(0, 130), 999, 1000, 1001, 4200, 105_000, 393_800, 1_000_000, 12_345_678])
def test_axis_steps_are_round_and_reach_the_peak(peak: int) -> None:
    step, top = _axis(peak)
    assert re.fullmatch(r"(1|2|25|5)0*", str(step)), step
    assert top % step == 0
    assert top >= max(peak, 1)
    assert top - peak < step or peak == 0
    assert top // step <= 5


def test_the_bundled_fonts_are_found() -> None:
    # The fallback below would hide a font left out of the package; only a warning would tell.
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        assert chart._font_data(name), name
    assert chart._font("DejaVuSans.ttf", 12).getname() == ("DejaVu Sans", "Book")


def test_without_the_bundled_font_pillows_own_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chart, "_font_data", lambda name: None)
    out: list[bytes] = []
    # A thread of its own: fonts are loaded once per thread, and this one has none yet.
    worker = threading.Thread(target=lambda: out.append(chart_of_counts(counts_of(SMALL), AMSTERDAM)))
    worker.start()
    worker.join()
    assert_bars_are(out[0], [sum(r) for r in SMALL])
