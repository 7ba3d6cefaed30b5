"""Plans: the day's prompts and recap time, and turning them into a concrete timetable.

A time is either a wall-clock ``"HH:MM"`` in the session's IANA timezone, on the session's day, or
an offset such as ``"+90m"``, ``"+1h30m"``, ``"+20s"`` counted from the session's start. Offsets
are absolute durations, so they are not bent by a DST change; clock times are, by design.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sessions.errors import PlanError

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_OFFSET = re.compile(r"\+(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True, slots=True)
class ClockTime:
    hour: int
    minute: int

    def __str__(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True, slots=True)
class Offset:
    seconds: int

    def __str__(self) -> str:
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
        return "+" + ("".join(parts) or "0s")


TimeSpec = ClockTime | Offset


def parse_time(value: object) -> TimeSpec:
    """Parse ``"HH:MM"`` or ``"+1h30m"``; raises :class:`ValueError` with a readable reason."""
    if not isinstance(value, str):
        raise ValueError(f'expected a string like "09:30" or "+90m", got {value!r}')
    text = value.strip()
    if m := _CLOCK.fullmatch(text):
        hour, minute = int(m[1]), int(m[2])
        if hour > 23 or minute > 59:
            raise ValueError(f"{value!r} is not a time of day (00:00 to 23:59)")
        return ClockTime(hour, minute)
    if (m := _OFFSET.fullmatch(text)) and any(m.groups()):
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        return Offset(h * 3600 + mi * 60 + s)
    raise ValueError(f'{value!r} is neither "HH:MM" nor an offset like "+90m", "+1h30m", "+20s"')


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptSpec:
    at: TimeSpec
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    name: str
    title: str
    intro: str
    recap_at: TimeSpec
    prompts: tuple[PromptSpec, ...]
    anonymous: bool = False
    pulse_at: TimeSpec | None = None  # a digest of the day so far to every channel (issue 13)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timetable:
    """A plan resolved against a start moment and a day: every time in UTC."""

    prompts: tuple[datetime, ...]
    recap_at: datetime
    pulse_at: datetime | None = None


def resolve_time(spec: TimeSpec, *, started_at: datetime, day: date, tz: ZoneInfo) -> datetime:
    """The UTC moment of ``spec`` for a session started at ``started_at`` on ``day`` in ``tz``.

    A clock time that does not exist on a DST-forward day (02:30 in Amsterdam on the last Sunday
    of March) lands as many minutes after the gap; an ambiguous one (October) takes its first
    occurrence. That is what ``fold=0`` gives through zoneinfo.
    """
    if isinstance(spec, Offset):
        return started_at.astimezone(UTC) + timedelta(seconds=spec.seconds)
    local = datetime.combine(day, time(spec.hour, spec.minute), tzinfo=tz)
    return local.astimezone(UTC)


def build_timetable(plan: Plan, *, started_at: datetime, day: date, tz: ZoneInfo) -> Timetable:
    """Resolve every time of ``plan``; raises :class:`PlanError` if the result is out of order."""
    prompts = tuple(resolve_time(p.at, started_at=started_at, day=day, tz=tz) for p in plan.prompts)
    recap_at = resolve_time(plan.recap_at, started_at=started_at, day=day, tz=tz)
    _check_order(plan, prompts, recap_at)
    pulse_at = None
    if plan.pulse_at is not None:
        pulse_at = resolve_time(plan.pulse_at, started_at=started_at, day=day, tz=tz)
        if pulse_at >= recap_at:
            raise PlanError(
                f"plan {plan.name!r}: pulse_at ({plan.pulse_at}) must come before recap_at ({plan.recap_at})"
            )
    return Timetable(prompts=prompts, recap_at=recap_at, pulse_at=pulse_at)


def _check_order(plan: Plan, prompts: Sequence[datetime], recap_at: datetime) -> None:
    for index in range(1, len(prompts)):
        if prompts[index] < prompts[index - 1]:
            raise PlanError(
                f"plan {plan.name!r}: prompts[{index}].at ({plan.prompts[index].at}) comes before "
                f"prompts[{index - 1}].at ({plan.prompts[index - 1].at}); list prompts in time order"
            )
    if prompts and recap_at <= prompts[-1]:
        raise PlanError(
            f"plan {plan.name!r}: recap_at ({plan.recap_at}) must come after the last prompt ({plan.prompts[-1].at})"
        )


def validate_plan(plan: Plan) -> None:
    """Checks that need no start moment: at least one prompt, and order where the forms agree.

    Mixed forms (clock times and offsets) can only be ordered once started; :func:`build_timetable`
    checks those then.
    """
    if not plan.prompts:
        raise PlanError(f"plan {plan.name!r}: prompts is empty; a plan needs at least one prompt")
    for index, prompt in enumerate(plan.prompts):
        if not prompt.text.strip():
            raise PlanError(f"plan {plan.name!r}: prompts[{index}].text is empty")
    specs = [p.at for p in plan.prompts] + [plan.recap_at] + ([plan.pulse_at] if plan.pulse_at else [])
    if all(isinstance(s, ClockTime) for s in specs) or all(isinstance(s, Offset) for s in specs):
        # Any fixed start and day resolve same-form times monotonically, so one probe decides.
        probe = datetime(2000, 1, 3, tzinfo=UTC)
        build_timetable(plan, started_at=probe, day=probe.date(), tz=ZoneInfo("UTC"))
