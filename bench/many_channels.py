"""Many channels: one session in 200 channels (100 on Slack, 100 on Discord), each platform's rate
limits modelled, and a share of every request answered 429 on top.

The real engine and ledger on a real SQLite file, in real time; the session is a circle of all 200
channels, started at once. Each platform is a model in this process (not the HTTP fakes): every
request takes a little latency, then is let through by token buckets — Slack ~1 message/s per
channel with a small burst; Discord 5 per 5 s per channel and 50/s for the whole bot — or answered
429 with a Retry-After (an empty bucket, or one request in five at random), which the client waits
out before it tries again, as the SDK clients do. On Discord each request first waits at the
adapter's own global pacer (:class:`adapters.discord.pacing.GlobalPacer`), as in the adapter; the
SDK's retries go out past it, as discord.py's do. A post is the requests its platform needs: the
parts the adapters' own renderers cut it into, and on Discord one more to open a prompt's thread.
Files (the recap's article and chart) are not modelled: on Slack they go through the files API's
own limits, after the recap's message.

Reported: from a prompt's due time to its post in the last channel, and from the recap's due time
to the recap's last post, the median of three days (each with other requests refused) and the
worst; how many posts were made twice (must be none).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.discord.pacing import FAN_OUT_CHANNELS, GlobalPacer
from adapters.discord.render import render as discord_render
from adapters.slack.render import render as slack_render
from bench.common import emit, flag, plan
from bot.loop import run as run_loop
from sessions.channels import Circle
from sessions.engine import Engine, EngineSettings
from sessions.ledger import PER_PLATFORM
from sessions.model import ChannelRef, CommandInvoked, Member, Message, MessageRef, Posted, ThreadRef
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore

CHANNELS_PER_PLATFORM = 100
REJECTED_SHARE = 0.2
TARGET_S = 5.0
# Days measured: the last channel of a post is set by the longest run of refusals any of its
# requests meets (each one's Retry-After waited out), so one day is one draw; the median of three
# is the figure, the worst is shown beside it.
ROUNDS = 3
_ORGANISER = Member(platform="slack", user_id="UORG", display_name="Organiser", is_admin=True)


@dataclass
class _Bucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    at: float

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0: there is one)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass
class ModelledPlatform:
    """A chat platform's posting API as its rate limits make it behave (see the module docstring)."""

    platform: str
    channel_rate: float
    channel_burst: float
    global_rate: float | None
    retry_after: float  # what a random 429 asks to wait
    thread_requests: int  # extra requests to open a thread
    rng: random.Random
    pacer: GlobalPacer | None = None  # the adapter's, in front of the SDK client
    parallel_channels: int = PER_PLATFORM  # channels the ledger serves at once, as for the adapter
    latency: float = 0.004
    reject: float = REJECTED_SHARE
    requests: int = 0
    rejected: int = 0
    posts: list[tuple[str, str, float]] = field(default_factory=list)  # (key, channel, monotonic time)
    _found: dict[tuple[str, str], Posted] = field(default_factory=dict)
    _channels: dict[str, _Bucket] = field(default_factory=dict)
    _global: _Bucket | None = None

    def _bucket(self, channel_id: str, now: float) -> _Bucket:
        bucket = self._channels.get(channel_id)
        if bucket is None:
            burst = self.channel_burst
            bucket = self._channels[channel_id] = _Bucket(self.channel_rate, burst, burst, now)
        return bucket

    async def _request(self, channel_id: str) -> None:
        while True:
            await asyncio.sleep(self.latency)
            self.requests += 1
            now = time.monotonic()
            channel = self._bucket(channel_id, now)
            if self._global is None and self.global_rate is not None:
                self._global = _Bucket(self.global_rate, self.global_rate, self.global_rate, now)
            wait = max(channel.wait(now), self._global.wait(now) if self._global else 0.0)
            if wait == 0.0 and self.rng.random() < self.reject:
                wait = self.retry_after
            if wait == 0.0:
                channel.tokens -= 1
                if self._global is not None:
                    self._global.tokens -= 1
                return
            self.rejected += 1
            await asyncio.sleep(wait)  # 429: the client waits out Retry-After and tries again

    def _requests_for(self, content: Message, key: str) -> int:
        if self.platform == "discord":
            return len(discord_render(content, post_digest=key[-16:]))
        return len(slack_render(content))

    async def _send(self, channel: ChannelRef, content: Message, key: str, *, thread: bool) -> Posted:
        for _ in range(self._requests_for(content, key) + (self.thread_requests if thread else 0)):
            if self.pacer is not None:
                await self.pacer.wait()
            await self._request(channel.channel_id)
        message = MessageRef(channel=channel, message_id=f"{channel.channel_id}-{len(self.posts)}")
        opened = ThreadRef(channel=channel, thread_id=message.message_id) if thread else None
        posted = Posted(message=message, thread=opened)
        self.posts.append((key.split(":", 3)[3], channel.channel_id, time.monotonic()))
        self._found[(channel.channel_id, key)] = posted
        return posted

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return await self._send(channel, content, key, thread=False)

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return await self._send(channel, content, key, thread=True)

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        return self._found.get((channel.channel_id, key))

    async def channel_name(self, channel: ChannelRef) -> str | None:
        return f"#{self.platform}-{channel.channel_id}"


def _slack(rng: random.Random) -> ModelledPlatform:
    # chat.postMessage: about one message a second per channel, short bursts tolerated; a 429
    # names whole seconds.
    return ModelledPlatform("slack", channel_rate=1.0, channel_burst=3, global_rate=None, retry_after=1.0,
                            thread_requests=0, rng=rng)


def _discord(rng: random.Random) -> ModelledPlatform:
    # 5 messages per 5 s per channel, 50 requests a second for the whole bot; a thread is a request.
    return ModelledPlatform("discord", channel_rate=1.0, channel_burst=5, global_rate=50.0, retry_after=0.5,
                            thread_requests=1, rng=rng, pacer=GlobalPacer(),
                            parallel_channels=FAN_OUT_CHANNELS)


async def _measure(folder: Path, per_platform: int, seed: int, spacing: int) -> dict[str, Any]:
    rng = random.Random(seed)
    slack, discord = _slack(rng), _discord(rng)
    channels = [ChannelRef(platform="slack", channel_id=f"C{i:04d}") for i in range(per_platform)]
    channels += [ChannelRef(platform="discord", channel_id=str(900000 + i)) for i in range(per_platform)]
    # The opening reaches every channel before the first prompt is due (it takes ~2 s for 200).
    day = plan("many", [f"+{spacing}s", f"+{2 * spacing}s"], recap=f"+{3 * spacing}s")
    store = await SqliteStore.open(folder / "many.db")
    engine = Engine(
        store=store,
        ports={"slack": slack, "discord": discord},
        plans=[day],
        settings=EngineSettings(default_plan="many", circles=(Circle(name="all", channels=tuple(channels)),)),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    await engine.start()
    try:
        started = time.monotonic()
        answer = await engine.on_command(
            CommandInvoked(channel=channels[0], member=_ORGANISER, name="start", args=("circle:all",), at=utc_now())
        )
        if "Started session #1" not in answer.text:
            raise RuntimeError(answer.text)
        opened_s = time.monotonic() - started
        session = await engine.wait_closed(1)
        prompts = await store.prompts(1)
    finally:
        await engine.stop()
        await store.close()
    # Due times on the monotonic clock the posts were stamped with.
    offset = time.monotonic() - datetime.now(UTC).timestamp()
    due = {f"prompt:{p.position}": p.due_at.timestamp() + offset for p in prompts}
    due["recap"] = session.recap_at.timestamp() + offset
    posts = slack.posts + discord.posts
    last: dict[str, float] = {}
    for key, _, at in posts:
        last[key] = max(last.get(key, 0.0), at)
    by_platform = {}
    for model in (slack, discord):
        mine: dict[str, float] = {}
        for key, _, at in model.posts:
            mine[key] = max(mine.get(key, 0.0), at)
        by_platform[model.platform] = {
            "prompt_s": max(mine[k] - due[k] for k in due if k.startswith("prompt:") and k in mine),
            "recap_s": mine["recap"] - due["recap"] if "recap" in mine else None,
            "requests": model.requests,
            "rejected": model.rejected,
        }
    per_key = Counter((key, channel) for key, channel, _ in posts)
    reached = {key: len({c for k, c, _ in posts if k == key}) for key in due}
    return {
        "channels": len(channels),
        "opening_s": opened_s,
        "prompt_s": max(last[k] - due[k] for k in due if k.startswith("prompt:")),
        "recap_s": last["recap"] - due["recap"],
        "reached": reached,
        "duplicates": sum(n - 1 for n in per_key.values() if n > 1),
        "requests": slack.requests + discord.requests,
        "rejected": slack.rejected + discord.rejected,
        "target_s": TARGET_S,
        "platforms": by_platform,
    }


def run(per_platform: int = CHANNELS_PER_PLATFORM, seed: int = 13, spacing: int = 6, rounds: int = 1) -> dict[str, Any]:
    """``rounds`` days, one after the other, each with its own seed (which requests are refused):
    the figures are each day's last channel, their median reported and their worst beside it."""
    days = []
    for n in range(rounds):
        with tempfile.TemporaryDirectory(prefix="popup-many-") as tmp:
            days.append(run_loop(_measure(Path(tmp), per_platform, seed + n, spacing)))
    return _combined(days)


def _combined(days: list[dict[str, Any]]) -> dict[str, Any]:
    first = days[0]
    return {
        **first,
        "rounds": len(days),
        "opening_s": statistics.median(d["opening_s"] for d in days),
        "prompt_s": statistics.median(d["prompt_s"] for d in days),
        "recap_s": statistics.median(d["recap_s"] for d in days),
        "worst_prompt_s": max(d["prompt_s"] for d in days),
        "worst_recap_s": max(d["recap_s"] for d in days),
        "reached": {key: min(d["reached"][key] for d in days) for key in first["reached"]},
        "duplicates": sum(d["duplicates"] for d in days),
        "requests": sum(d["requests"] for d in days),
        "rejected": sum(d["rejected"] for d in days),
        "days": [{k: d[k] for k in ("prompt_s", "recap_s", "platforms")} for d in days],
    }


def report(r: dict[str, Any]) -> str:
    within = "within" if r["prompt_s"] <= r["target_s"] else "NOT within"
    days = r["days"]
    return "\n".join(
        [
            f"many channels: one session in {r['channels']} channels (half Slack, half Discord), "
            f"{len(days)} days; {r['rejected']:,} of {r['requests']:,} requests answered 429",
            f"  opening in every channel {r['opening_s']:.2f} s after /popup start (median)",
            f"  prompt due -> last channel {r['prompt_s']:.2f} s median, {r['worst_prompt_s']:.2f} s worst "
            f"({within} the {r['target_s']:.0f} s target at the median)",
            f"  recap due -> last channel {r['recap_s']:.2f} s median, {r['worst_recap_s']:.2f} s worst "
            "(messages; files not modelled)",
            *(
                f"  day {n}: "
                + "; ".join(
                    f"{name} prompt {p['prompt_s']:.2f} s, recap {p['recap_s']:.2f} s, "
                    f"{p['rejected']:,}/{p['requests']:,} refused"
                    for name, p in day["platforms"].items()
                )
                for n, day in enumerate(days, 1)
            ),
            f"  channels reached per post: {r['reached']}; posted twice: {r['duplicates']}",
        ]
    )


def main() -> None:
    results = run(per_platform=flag("per-platform", CHANNELS_PER_PLATFORM), rounds=flag("rounds", ROUNDS))
    print(report(results), flush=True)
    emit(results)


if __name__ == "__main__":
    main()
