"""``make bench``: the benchmarks, each in a process of its own, then the summary line.

Each benchmark runs as ``python -m bench.NAME --json FILE`` so its peak RSS and its garbage are its
own; its figures go to stdout as it finishes. The last line is the summary (issue 7's format).
``python -m bench ingest startup`` runs only the benchmarks named.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ORDER = (
    "ingest",
    "recap",
    "punctuality",
    "slack_ack",
    "startup",
    "discord_ingest",
    "story",
    "many_channels",
    "many_sessions",
    "web",
    "postgres_ingest",
    "email_ingest",
)
TIMEOUT = 300  # per benchmark, seconds


def _run(name: str, folder: Path) -> dict[str, Any] | None:
    out = folder / f"{name}.json"
    started = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
        subprocess.run([sys.executable, "-m", f"bench.{name}", "--json", str(out)], check=True, timeout=TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        print(f"   {name} failed: {error}", flush=True)
        return None
    print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _ingest(r: dict[str, Any]) -> str:
    return f"ingest {r['ratio']:.2f}x raw ({r['engine_per_s']:.0f}/s, p99 {r['p99_ms']:.0f} ms @2k/s)"


def _recap(r: dict[str, Any]) -> str:
    sizes = r["sizes"]
    largest = max(sizes, key=int)
    big = sizes[largest]
    label = f"{int(largest) // 1_000_000}M" if int(largest) >= 1_000_000 else f"{int(largest) // 1000}k"
    # The largest size's ratio: the one the parenthesis is about (every size is printed above).
    return f"recap {big['ratio']:.1f}x floor ({label} {big['recap_s']:.1f} s, {big['peak_rss_mb']:.0f} MB)"


def _lateness(r: dict[str, Any]) -> str:
    return f"lateness p99 {r['p99_ms']:.0f} ms"


def _slack(r: dict[str, Any]) -> str:
    return f"slack ack p99 {r['p99_ms']:.0f} ms"


def _startup(r: dict[str, Any]) -> str:
    return f"startup {r['ready_s']:.2f} s"


def _discord(r: dict[str, Any]) -> str:
    return f"discord {r['per_s']:.0f}/s {r['peak_rss_mb']:.0f} MB"


def _size(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"


def _story(r: dict[str, Any]) -> str:
    sizes = sorted(r["sizes"].items(), key=lambda kv: int(kv[0]))
    parts = [f"{_size(int(size))} {f['cold_s']:.1f} s" for size, f in sizes]
    rss = max(f["peak_rss_mb"] for _, f in sizes)
    return f"story cold {', '.join(parts)}, {rss:.0f} MB"


def _channels(r: dict[str, Any]) -> str:
    twice = f", {r['duplicates']} twice" if r["duplicates"] else ""
    return (
        f"{r['channels']} channels: prompt {r['prompt_s']:.1f} s (worst {r['worst_prompt_s']:.1f}), "
        f"recap {r['recap_s']:.1f} s (worst {r['worst_recap_s']:.1f}) after due{twice}"
    )


def _sessions(r: dict[str, Any]) -> str:
    return f"many: lateness p99 {r['p99_ms']:.0f} ms, resume {r['resume_s']:.2f} s, {r['peak_rss_mb']:.0f} MB"


def _web(r: dict[str, Any]) -> str:
    return (
        f"web GET p99 {r['get_p99_ms']:.0f} ms, POST p99 {r['post_p99_ms']:.0f} ms, "
        f"fan-out {r['fan_out_s'] * 1000:.0f} ms to {r['live']}, {r['rss_mb']:.0f} MB"
    )


def _postgres(r: dict[str, Any]) -> str:
    return (
        f"postgres {r['ratio']:.2f}x raw ({r['engine_per_s']:.0f}/s), {r['processes']} processes "
        f"{r['cluster_per_s']:.0f}/s, p99 {r['cluster_p99_ms']:.0f} ms @2k/s"
    )


def _email(r: dict[str, Any]) -> str:
    ingest, fan_out = r["ingest"], r["fan_out"]
    return (
        f"email {ingest['mails']:,} waiting mails stored in {ingest['ingest_s']:.1f} s, "
        f"fan-out {fan_out['lists']} lists {fan_out['fan_out_s']:.2f} s"
    )


SUMMARY: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "ingest": ("ingest", _ingest),
    "recap": ("recap", _recap),
    "punctuality": ("lateness", _lateness),
    "slack_ack": ("slack ack", _slack),
    "startup": ("startup", _startup),
    "discord_ingest": ("discord", _discord),
    "story": ("story", _story),
    "many_channels": ("channels", _channels),
    "many_sessions": ("many", _sessions),
    "web": ("web", _web),
    "postgres_ingest": ("postgres", _postgres),
    "email_ingest": ("email", _email),
}


def summary(results: dict[str, dict[str, Any] | None]) -> str:
    parts = []
    for name, (label, render) in SUMMARY.items():
        if name not in results:
            continue
        figures = results[name]
        parts.append(f"{label}: failed" if figures is None else render(figures))
    return "bench: " + "; ".join(parts)


def main(argv: list[str]) -> int:
    names = [n for n in argv if n in ORDER] or list(ORDER)
    started = time.perf_counter()
    results: dict[str, dict[str, Any] | None] = {}
    with tempfile.TemporaryDirectory(prefix="popup-bench-") as tmp:
        for name in names:
            results[name] = _run(name, Path(tmp))
    print(f"== all done in {time.perf_counter() - started:.0f} s", flush=True)
    print(summary(results), flush=True)
    return 0 if all(r is not None for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
