"""The participation chart: replies per prompt, and replies across the day by prompt.

Drawn with Pillow straight onto pixels. matplotlib took ~150 ms a recap, most of it building and
measuring tick and text artists for two axes; this chart is rectangles, lines and a few dozen
short labels at fixed places, which Pillow draws in a few milliseconds. The font is DejaVu Sans,
bundled in ``fonts/`` beside this module with its licence, so no system font is needed.
Labels are ours (prompt numbers, clock times and the session's zone), never member text, so
nothing typed by a member ends up in a picture that cannot be escaped, searched or redacted.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources

from PIL import Image, ImageDraw, ImageFont

from sessions.compose import local_time
from sessions.recap.story import Counts, Story, Timeline
from sessions.records import PromptRecord

_log = logging.getLogger(__name__)

_WIDTH, _HEIGHT = 800, 640
_COLOURS = ("#2b6cb0", "#dd6b20", "#2f855a", "#b7791f", "#6b46c1", "#c53030", "#2c7a7b", "#97266d")
_RGB = tuple((int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for c in _COLOURS)
# The article's palette (--ink, --muted, --line), so the chart sits in the page.
_INK = (26, 32, 44)
_MUTED = (90, 100, 115)
_GRID = (226, 232, 240)
_AXIS = (113, 128, 150)
_WHITE = (255, 255, 255)
_TEXT_SHADES = 16  # steps from white to a text colour in the PNG's palette; more look no smoother

_LEFT_PAD = 10  # image edge to the rotated "Replies"
_RIGHT = _WIDTH - 24
_LEGEND_ROWS = 2
_MOST_TICKS = 5  # grid lines above zero, at most
# Seconds between time labels that read as round clock times: 15 s, 20 min, 3 h, a day...
_ROUND_PERIODS = frozenset(
    {1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200, 86400}
)


@dataclass(frozen=True, slots=True)
class _Fonts:
    title: ImageFont.FreeTypeFont
    label: ImageFont.FreeTypeFont
    tick: ImageFont.FreeTypeFont


@functools.cache
def _font_data(name: str) -> bytes | None:
    # Bytes, not a path: importlib.resources gives a real file only when the package is unpacked
    # on disk, and bytes read the same from a zip. Read once; each thread's faces share them.
    try:
        return resources.files("sessions.recap").joinpath("fonts", name).read_bytes()
    except OSError:
        return None


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    data = _font_data(name)
    if data is not None:
        # Our labels are digits, Latin letters and zone names: the basic layout is enough, and
        # cheaper than raqm's shaping.
        return ImageFont.truetype(io.BytesIO(data), size, layout_engine=ImageFont.Layout.BASIC)
    _log.warning("chart: %s is missing from the package, using Pillow's default font", name)
    font = ImageFont.load_default(size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("the chart needs Pillow with FreeType")
    return font


_local = threading.local()


def _fonts() -> _Fonts:
    # One set per thread: recaps draw in worker threads, and a FreeType face must not be used by
    # two threads at once. Loading costs ~1 ms, once per thread.
    fonts: _Fonts | None = getattr(_local, "fonts", None)
    if fonts is None:
        fonts = _Fonts(
            title=_font("DejaVuSans-Bold.ttf", 15),
            label=_font("DejaVuSans.ttf", 13),
            tick=_font("DejaVuSans.ttf", 12),
        )
        _local.fonts = fonts
    return fonts


def render_chart(story: Story) -> bytes:
    """The chart as PNG bytes."""
    totals = {p.prompt.id: (p.replies, p.reactions) for p in story.prompts}
    counts = Counts(prompts=tuple(p.prompt for p in story.prompts), timeline=story.timeline, totals=totals)
    return chart_of_counts(counts, story.session.timezone)


def chart_of_counts(counts: Counts, timezone: str) -> bytes:
    """The chart from the counts alone, so it can be drawn while the replies are being ranked."""
    fonts = _fonts()
    image = Image.new("RGB", (_WIDTH, _HEIGHT), _WHITE)
    draw = ImageDraw.Draw(image)
    prompts = counts.prompts
    replies = [counts.replies(p.id) for p in prompts]
    timeline = counts.timeline
    bins = len(timeline.labels)
    per_bin = timeline.totals or (0,) * bins

    step_top, peak_top = _axis(max(replies, default=0))
    step_day, peak_day = _axis(max(per_bin, default=0))
    # One number style for both panels: "400k" once any count needs five digits, "4,000" below.
    compact = max(peak_top, peak_day) >= 10_000
    ticks_top = _tick_labels(step_top, peak_top, any(replies), compact)
    ticks_day = _tick_labels(step_day, peak_day, any(per_bin), compact)
    # Both panels share one left edge, wide enough for the widest count on either.
    widest = max(fonts.tick.getlength(t) for t in ticks_top + ticks_day)
    left = round(_LEFT_PAD + fonts.label.size + 10 + widest + 8)

    _prompts_panel(image, draw, fonts, prompts, replies, _Scale(step_top, peak_top, ticks_top), left)
    _day_panel(image, draw, fonts, counts, timezone, _Scale(step_day, peak_day, ticks_day), left)

    # Every colour drawn is known: mapped onto them, the PNG is one byte a pixel and skips the
    # per-row filter search of an RGB PNG, which took most of the time (~7 ms of ~10) and twice
    # the bytes. Level 1: higher levels cost more time than the few kB they save.
    indexed = image.quantize(palette=_palette(), dither=Image.Dither.NONE)
    out = io.BytesIO()
    # Pillow writes no timestamp, so the same counts give the same bytes.
    indexed.save(out, format="PNG", compress_level=1)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class _Scale:
    """A panel's count axis: grid step, top, and the labels of its lines."""

    step: int
    peak: int
    labels: list[str]


def _prompts_panel(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    fonts: _Fonts,
    prompts: Sequence[PromptRecord],
    replies: Sequence[int],
    scale: _Scale,
    left: int,
) -> None:
    """Replies per prompt, one bar each."""
    _title(draw, fonts, "Replies per prompt", 10)
    top, bottom = 56, 262
    _grid(draw, fonts, scale, left, top, bottom)
    _vertical(image, fonts.label, "Replies", (top + bottom) // 2)
    if prompts:
        per_reply = (bottom - top) / scale.peak
        slot = (_RIGHT - left) / len(prompts)
        half = max(1.0, slot * 0.35)
        values = [f"{c:,}" for c in replies]
        if max(fonts.tick.getlength(v) for v in values) > slot - 4:
            values = [_compact(c) for c in replies]
        show_values = max(fonts.tick.getlength(v) for v in values) <= slot - 2
        numbers = [str(p.position) for p in prompts]
        every = _every(max(fonts.tick.getlength(n) for n in numbers) + 6, slot)
        for i, (c, value, number) in enumerate(zip(replies, values, numbers, strict=True)):
            centre = left + slot * (i + 0.5)
            y = bottom - round(c * per_reply)
            if y < bottom:
                colour = _RGB[i % len(_RGB)]
                draw.rectangle((round(centre - half), y, round(centre + half) - 1, bottom - 1), fill=colour)
            if show_values:
                draw.text((centre, y - 4), value, font=fonts.tick, fill=_INK, anchor="ms")
            if i % every == 0:
                draw.line((round(centre), bottom, round(centre), bottom + 4), fill=_AXIS)
                draw.text((centre, bottom + 7), number, font=fonts.tick, fill=_INK, anchor="mt")
    else:
        draw.text(((left + _RIGHT) / 2, (top + bottom) / 2), "No prompts", font=fonts.label, fill=_MUTED, anchor="mm")
    draw.line((left, bottom, _RIGHT, bottom), fill=_AXIS)
    draw.text(((left + _RIGHT) / 2, bottom + 25), "Prompt", font=fonts.label, fill=_INK, anchor="mt")


def _day_panel(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    fonts: _Fonts,
    counts: Counts,
    timezone: str,
    scale: _Scale,
    left: int,
) -> None:
    """Replies across the day, stacked by prompt."""
    prompts = counts.prompts
    timeline = counts.timeline
    bins = len(timeline.labels)
    _title(draw, fonts, f"Replies across the day ({timezone})", 330)
    entries = [(i, p.position) for i, (p, row) in enumerate(zip(prompts, timeline.counts, strict=True)) if any(row)]
    rows = _legend(draw, fonts, entries, left, 360)
    top, bottom = 360 + rows * 20 + 12, 598
    _grid(draw, fonts, scale, left, top, bottom)
    _vertical(image, fonts.label, "Replies", (top + bottom) // 2)
    if bins:
        per_reply = (bottom - top) / scale.peak
        width = (_RIGHT - left) / bins
        gap = 1 if width >= 8 else 0  # bins read apart when there is room to part them
        columns = list(zip(*timeline.counts, strict=True)) if timeline.counts else [()] * bins
        for b, column in enumerate(columns):
            x0 = left + round(b * width)
            x1 = max(x0, left + round((b + 1) * width) - 1 - gap)
            # Rounded from the running sum, not per segment, so a stack is as tall as its total.
            running, floor = 0, bottom
            for i, c in enumerate(column):
                if c:
                    running += c
                    y = bottom - round(running * per_reply)
                    if y < floor:
                        draw.rectangle((x0, y, x1, floor - 1), fill=_RGB[i % len(_RGB)])
                        floor = y
        for edge, label in _time_ticks(timeline, timezone, width, fonts.tick.getlength):
            x = left + round(edge * width)
            half = fonts.tick.getlength(label) / 2
            draw.line((x, bottom, x, bottom + 4), fill=_AXIS)
            # The end label may not fit centred under the last edge: kept whole inside the image.
            at = min(max(x, half + 2), _WIDTH - half - 2)
            draw.text((at, bottom + 7), label, font=fonts.tick, fill=_INK, anchor="mt")
    if not any(timeline.totals):
        draw.text(((left + _RIGHT) / 2, (top + bottom) / 2), "No replies", font=fonts.label, fill=_MUTED, anchor="mm")
    draw.line((left, bottom, _RIGHT, bottom), fill=_AXIS)


def _palette() -> Image.Image:
    """Our colours, and the shades of anti-aliased text on white."""
    values = [v for colour in (_WHITE, *_RGB, _GRID, _AXIS, _INK, _MUTED) for v in colour]
    for ink in (_INK, _MUTED):
        for level in range(1, _TEXT_SHADES):
            values += (round(255 + (c - 255) * level / _TEXT_SHADES) for c in ink)
    palette = Image.new("P", (1, 1))
    palette.putpalette(values)
    return palette


def _axis(peak: int) -> tuple[int, int]:
    """A round step (1, 2, 2.5 or 5 times a power of ten) reaching ``peak`` in at most
    :data:`_MOST_TICKS` steps, and the axis top it gives; whole numbers only, as replies are."""
    scale = 1
    while True:
        # 2.5 only from 25 up: a step of 2.5 replies is no count.
        steps = (scale, 2 * scale, 5 * scale // 2, 5 * scale) if scale >= 10 else (scale, 2 * scale, 5 * scale)
        for step in steps:
            if step * _MOST_TICKS >= peak:
                return step, max(1, -(-peak // step)) * step
        scale *= 10


def _tick_labels(step: int, top: int, drawn: bool, compact: bool) -> list[str]:
    if not drawn:
        return ["0"]  # an empty panel has no scale to show
    return [_compact(v) if compact else f"{v:,}" for v in range(0, top + 1, step)]


def _compact(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.3g}k"
    return f"{n / 1_000_000:.3g}M"


def _every(label_width: float, slot: float) -> int:
    """Label every how many slots, so the labels do not touch."""
    return next((k for k in range(1, 1000) if k * slot >= label_width), 1000)


def _title(draw: ImageDraw.ImageDraw, fonts: _Fonts, text: str, y: int) -> None:
    draw.text((_WIDTH / 2, y), text, font=fonts.title, fill=_INK, anchor="mt")


def _grid(draw: ImageDraw.ImageDraw, fonts: _Fonts, scale: _Scale, left: int, top: int, bottom: int) -> None:
    """Horizontal grid lines with their counts, behind what is drawn next."""
    for k, label in enumerate(scale.labels):
        y = bottom - round(k * scale.step * (bottom - top) / scale.peak)
        if k:
            draw.line((left, y, _RIGHT, y), fill=_GRID)
        draw.text((left - 8, y), label, font=fonts.tick, fill=_MUTED, anchor="rm")


def _vertical(image: Image.Image, font: ImageFont.FreeTypeFont, text: str, middle: int) -> None:
    x0, y0, x1, y1 = font.getbbox(text)
    mask = Image.new("L", (round(x1 - x0), round(y1 - y0)))
    ImageDraw.Draw(mask).text((-x0, -y0), text, font=font, fill=255)
    mask = mask.transpose(Image.Transpose.ROTATE_90)
    image.paste(_INK, (_LEFT_PAD, middle - mask.height // 2), mask)


def _legend(draw: ImageDraw.ImageDraw, fonts: _Fonts, entries: Sequence[tuple[int, int]], left: int, y: int) -> int:
    """Swatch and prompt number per prompt that has replies, in rows above the plot; the rows used."""
    if not entries:
        return 0
    room = _RIGHT - left
    font = fonts.tick
    for lead, texts in (("", [f"Prompt {n}" for _, n in entries]), ("Prompt", [str(n) for _, n in entries])):
        rows = _wrap(font, lead, texts, room)
        if len(rows) <= _LEGEND_ROWS:
            break
    else:
        # Too many prompts even by number: the first ones, and how many more.
        rows = rows[:_LEGEND_ROWS]
        shown = sum(len(r) for r in rows) - 1
        rows[-1][-1] = f"+{len(entries) - shown} more"
    index = 0
    for r, row in enumerate(rows):
        x = float(left)
        cy = y + r * 20 + 8
        if r == 0 and lead:
            draw.text((x, cy), lead, font=font, fill=_INK, anchor="lm")
            x += font.getlength(lead) + 10
        for text in row:
            if text.startswith("+"):
                draw.text((x, cy), text, font=font, fill=_MUTED, anchor="lm")
                break
            colour = _RGB[entries[index][0] % len(_RGB)]
            draw.rectangle((round(x), cy - 6, round(x) + 11, cy + 5), fill=colour)
            draw.text((x + 16, cy), text, font=font, fill=_INK, anchor="lm")
            x += 16 + font.getlength(text) + 14
            index += 1
    return len(rows)


def _wrap(font: ImageFont.FreeTypeFont, lead: str, texts: Sequence[str], room: float) -> list[list[str]]:
    rows: list[list[str]] = [[]]
    x = font.getlength(lead) + 10 if lead else 0.0
    for text in texts:
        width = 16 + font.getlength(text)
        if rows[-1] and x + width > room:
            rows.append([])
            x = 0.0
        rows[-1].append(text)
        x += width + 14
    return rows


def _time_ticks(
    timeline: Timeline, timezone: str, width: float, measure: Callable[[str], float]
) -> list[tuple[int, str]]:
    """(bin edge, clock time) to label: as many as fit side by side at ``width`` pixels a bin,
    on round local times where the bin width allows."""
    bins = len(timeline.labels)
    # Each bin is labelled with its start; the last edge, the end of the day's last bin, too.
    edges = [*timeline.labels, local_time(timeline.origin + timeline.width * bins, timezone)]
    room = max(measure(t) for t in edges) + 14
    seconds = timeline.width.total_seconds()
    fits = [s for s in range(1, bins + 1) if s * width >= room]
    step = next((s for s in fits if s * seconds in _ROUND_PERIODS), fits[0] if fits else max(bins, 1))
    period = step * seconds
    first = next((e for e in range(min(step, bins + 1)) if period and _seconds(edges[e]) % period == 0), 0)
    return [(e, edges[e]) for e in range(first, bins + 1, step)]


def _seconds(label: str) -> int:
    """Seconds into the day of an ``HH:MM`` or ``HH:MM:SS`` label; -1 for anything else."""
    parts = label.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        return -1
    hours, minutes, seconds = (int(p) for p in (*parts, "0")[:3])
    return hours * 3600 + minutes * 60 + seconds
