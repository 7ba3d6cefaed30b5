"""The words of ``/popup``: parsing their arguments, and the help text."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from sessions.errors import CommandError

COMMANDS = ("start", "stop", "cancel", "status", "next", "plans", "forget", "web", "help")

HELP = """\
/popup start [PLAN] [today|tomorrow|YYYY-MM-DD] [anonymous] — open a popup learning session here
/popup status — where the session stands (only you see it)
/popup next — post the next prompt now
/popup stop — close now and post the recap
/popup cancel — end without a recap
/popup plans — the plans you can start
/popup forget — remove your replies from the session and everything made from it
/popup web — a one-time sign-in link to the web dashboard (when the web side is on; only you see it)
/popup help — this list
Members answer each prompt in its thread, whenever they like during the day."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StartArgs:
    plan: str | None
    day: str  # "today", "tomorrow" or an ISO date
    anonymous: bool


def parse_start(args: tuple[str, ...], plan_names: Collection[str]) -> StartArgs:
    """``start [PLAN] [DAY] [anonymous]``; words may come in any order, each at most once."""
    plan: str | None = None
    day: str | None = None
    anonymous = False
    for word in args:
        lowered = word.lower()
        if lowered in ("today", "tomorrow") or _DATE.fullmatch(word):
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
    return StartArgs(plan=plan, day=day or "today", anonymous=anonymous)


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


_START_USAGE = "Usage: /popup start [PLAN] [today|tomorrow|YYYY-MM-DD] [anonymous]"
