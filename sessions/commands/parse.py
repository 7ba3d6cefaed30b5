"""The words of ``/popup``: parsing their arguments, and the help text."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from sessions.errors import CommandError

COMMANDS = (
    "start", "stop", "cancel", "status", "next", "plans", "forget", "join", "leave", "link", "web", "invite", "help",
)

HELP = """\
/popup start [PLAN] [today|tomorrow|YYYY-MM-DD] [anonymous] [circle:NAME] — open a popup learning session here
/popup status — where the session stands (only you see it)
/popup next — post the next prompt now
/popup stop — close now and post the recap
/popup cancel — end without a recap
/popup plans — the plans you can start
/popup forget — remove your replies from the session and everything made from it
/popup join CODE — bring this channel (any platform) into the session whose join code is CODE
/popup leave [email:NAME] — take this channel (or an invited list) out of its session; replies stay
/popup link [CODE] — count you as one person across platforms: get a code here, type it on the other
/popup web — a one-time sign-in link to the web dashboard (when the web side is on; only you see it)
/popup invite email:NAME — a configured mailing list joins this session by mail
/popup help — this list
Members answer each prompt in its thread, whenever they like during the day."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StartArgs:
    plan: str | None
    day: str  # "today", "tomorrow" or an ISO date
    anonymous: bool
    circle: str | None = None  # circle:NAME, a [[circles]] entry to start in as well


def parse_start(args: tuple[str, ...], plan_names: Collection[str]) -> StartArgs:
    """``start [PLAN] [DAY] [anonymous]``; words may come in any order, each at most once."""
    plan: str | None = None
    day: str | None = None
    anonymous = False
    circle: str | None = None
    for word in args:
        lowered = word.lower()
        if lowered.startswith("circle:") and circle is None and len(word) > len("circle:"):
            circle = word[len("circle:") :]
        elif lowered in ("today", "tomorrow") or _DATE.fullmatch(word):
            if day is not None:
                raise CommandError(f"Two days given ({day!r} and {word!r}). {_START_USAGE}")
            day = lowered
        elif lowered == "anonymous":
            anonymous = True
        elif word in plan_names and plan is None:
            plan = word
        else:
            known = ", ".join(sorted(plan_names)) or "none configured"
            raise CommandError(f"I don't know {word!r}. Plans: {known}. {_START_USAGE}")
    return StartArgs(plan=plan, day=day or "today", anonymous=anonymous, circle=circle)


def resolve_day(word: str, today: date) -> date:
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    try:
        day = date.fromisoformat(word)
    except ValueError:
        raise CommandError(f"{word!r} is not a date (YYYY-MM-DD). {_START_USAGE}") from None
    if day < today:
        raise CommandError(f"{word} has passed; pick today, tomorrow or a later date.")
    return day


_START_USAGE = "Usage: /popup start [PLAN] [today|tomorrow|YYYY-MM-DD] [anonymous] [circle:NAME]"

# Join and link codes: letters and digits in groups, 64 random bits (the brief asks for 40 at
# least): guessing one among a day's few sessions takes far more tries than anyone can type.
_CODE = re.compile(r"[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{5}")


def new_code() -> str:
    """A fresh join or link code such as ``k3fq-x2pa-m7d4e`` (base32: letters and digits 2-7)."""
    text = base64.b32encode(secrets.token_bytes(8)).decode("ascii").rstrip("=").lower()
    return f"{text[:4]}-{text[4:8]}-{text[8:13]}"


def parse_code(args: tuple[str, ...], usage: str) -> str:
    """The one code of ``join CODE`` (or ``link CODE``), as typed or pasted (any case, stray dots)."""
    if len(args) != 1:
        raise CommandError(usage)
    code = args[0].strip().strip("`.,;:").lower()
    if not _CODE.fullmatch(code):
        raise CommandError(f"{args[0]!r} is not a Popup code (it looks like k3fq-x2pa-m7d4e). {usage}")
    return code
