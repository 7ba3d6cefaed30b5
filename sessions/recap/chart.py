"""The participation chart: replies per prompt, and replies across the day by prompt.

Made with matplotlib's object API on the Agg canvas: no pyplot, so no global figure registry to
leak figures from a long-running bot, and no GUI backend is ever picked up from the environment.
Labels are ours (prompt numbers and clock times), never member text, so nothing typed by a member
can reach matplotlib's mathtext parser.
"""

from __future__ import annotations

import io
import logging

import matplotlib

matplotlib.use("Agg")  # before anything else of matplotlib's: a server has no display

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sessions.recap.story import Counts, Story

_log = logging.getLogger(__name__)

_COLOURS = ("#2b6cb0", "#dd6b20", "#2f855a", "#b7791f", "#6b46c1", "#c53030", "#2c7a7b", "#97266d")
_MAX_LEGEND = 10
_MAX_TICKS = 12


def render_chart(story: Story) -> bytes:
    """The chart as PNG bytes."""
    totals = {p.prompt.id: (p.replies, p.reactions) for p in story.prompts}
    counts = Counts(prompts=tuple(p.prompt for p in story.prompts), timeline=story.timeline, totals=totals)
    return chart_of_counts(counts, story.session.timezone)


def chart_of_counts(counts: Counts, timezone: str) -> bytes:
    """The chart from the counts alone, so it can be drawn while the replies are being ranked."""
    prompts = counts.prompts
    # A fixed layout: matplotlib's constrained layout would cost more than the drawing itself.
    fig = Figure(figsize=(8, 6.4), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.95, bottom=0.11, hspace=0.5)
    top, bottom = fig.subplots(2, 1)

    numbers = [f"{p.position}" for p in prompts]
    replies = [counts.replies(p.id) for p in prompts]
    colours = [_COLOURS[i % len(_COLOURS)] for i in range(len(prompts))]
    bars = top.bar(numbers, replies, color=colours)
    top.bar_label(bars, labels=[f"{c:,}" for c in replies], padding=2, fontsize=9)
    top.set_title("Replies per prompt")
    top.set_xlabel("Prompt")
    top.set_ylabel("Replies")
    top.margins(y=0.18)
    top.spines[["top", "right"]].set_visible(False)
    top.yaxis.set_major_locator(MaxNLocator(integer=True))

    # Replies across the day: one filled step area per prompt, stacked (one artist per prompt
    # rather than one bar per bin keeps the drawing cheap).
    timeline = counts.timeline
    bins = len(timeline.labels)
    edges = [i - 0.5 for i in range(bins + 1)]
    base = [0] * bins
    for i, (p, row) in enumerate(zip(prompts, timeline.counts, strict=True)):
        if not any(row):
            continue
        stacked = [b + c for b, c in zip(base, row, strict=True)]
        label = f"Prompt {p.position}" if i < _MAX_LEGEND else None
        bottom.stairs(stacked, edges, baseline=base, fill=True, color=colours[i], label=label)
        base = stacked
    step = max(1, -(-bins // _MAX_TICKS))
    ticks = list(range(0, bins, step))
    bottom.set_xticks(ticks, [timeline.labels[t] for t in ticks], rotation=45, ha="right", fontsize=8)
    bottom.set_xlim(-0.5, bins - 0.5)
    bottom.set_ylim(0, max(max(base) * 1.35, 1))  # headroom for the legend
    bottom.set_title(f"Replies across the day ({timezone})")
    bottom.set_ylabel("Replies")
    bottom.spines[["top", "right"]].set_visible(False)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    if any(base):
        bottom.legend(fontsize=8, frameon=False, ncols=min(5, max(1, len(prompts))), loc="upper right")

    out = io.BytesIO()
    # No timestamp in the metadata: the same story gives the same bytes.
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
