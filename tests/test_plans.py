from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessions.errors import PlanError
from sessions.plans import ClockTime, Offset, Plan, PromptSpec, build_timetable, parse_time, validate_plan

AMS = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00", ClockTime(9, 0)),
        ("9:05", ClockTime(9, 5)),
        ("23:59", ClockTime(23, 59)),
        ("+90m", Offset(5400)),
        ("+1h30m", Offset(5400)),
        ("+20s", Offset(20)),
        ("+8h", Offset(28800)),
        ("+1h2m3s", Offset(3723)),
    ],
)
def test_parse_time_accepts(text: str, expected: object) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["25:99", "24:00", "12:60", "+", "+5", "90m", "noon", "", "+1m1h", "-5m"])
def test_parse_time_rejects_with_reason(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("+", r"\+")):
        parse_time(text)


def test_parse_time_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="expected a string"):
        parse_time(900)


@given(st.integers(min_value=0, max_value=10**6))
def test_offset_round_trips_through_its_text(seconds: int) -> None:
    assert parse_time(str(Offset(seconds))) == Offset(seconds)


def _plan(*ats: str, recap: str) -> Plan:
    return Plan(
        name="day",
        title="Day",
        intro="",
        recap_at=parse_time(recap),
        prompts=tuple(PromptSpec(at=parse_time(a), text=f"q{i}") for i, a in enumerate(ats)),
    )


def test_clock_times_on_a_dst_forward_day_in_amsterdam() -> None:
    # 2026-03-29: clocks go 02:00 -> 03:00. 01:30 is CET (+1), 02:30 does not exist, 03:30 is CEST (+2).
    plan = _plan("01:30", "02:30", "03:30", recap="17:00")
    table = build_timetable(plan, started_at=datetime(2026, 3, 29, 0, 0, tzinfo=UTC), day=date(2026, 3, 29), tz=AMS)
    assert table.prompts[0] == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert table.prompts[1] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # the gap shifts forward to 03:30 local
    assert table.prompts[2] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert table.recap_at == datetime(2026, 3, 29, 15, 0, tzinfo=UTC)


def test_clock_times_on_a_dst_back_day_take_the_first_occurrence() -> None:
    # 2026-10-25: 03:00 CEST -> 02:00 CET, so 02:30 happens twice; we take the first (CEST).
    plan = _plan("02:30", recap="17:00")
    table = build_timetable(plan, started_at=datetime(2026, 10, 25, 0, 0, tzinfo=UTC), day=date(2026, 10, 25), tz=AMS)
    assert table.prompts[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert table.recap_at == datetime(2026, 10, 25, 16, 0, tzinfo=UTC)  # CET after the change


def test_offsets_are_absolute_across_a_dst_change() -> None:
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    table = build_timetable(_plan("+1h", recap="+2h"), started_at=start, day=date(2026, 3, 29), tz=AMS)
    assert (table.prompts[0] - start).total_seconds() == 3600
    assert table.prompts[0].astimezone(AMS).hour == 3  # 02:30 does not exist that night


def test_validation_names_plan_and_field() -> None:
    with pytest.raises(PlanError, match=r"plan 'day': prompts is empty"):
        validate_plan(_plan(recap="17:00"))
    with pytest.raises(PlanError, match=r"plan 'day': recap_at \(12:00\) must come after the last prompt \(16:00\)"):
        validate_plan(_plan("09:00", "16:00", recap="12:00"))
    with pytest.raises(PlanError, match=r"prompts\[1\]\.at \(09:00\) comes before prompts\[0\]\.at \(10:00\)"):
        validate_plan(_plan("10:00", "09:00", recap="17:00"))
    with pytest.raises(PlanError, match=r"recap_at \(\+1m\) must come after"):
        validate_plan(_plan("+1m", "+5m", recap="+1m"))


def test_mixed_forms_are_ordered_once_started() -> None:
    plan = _plan("+10m", "09:00", recap="17:00")
    validate_plan(plan)  # cannot tell yet
    with pytest.raises(PlanError, match="comes before"):
        build_timetable(plan, started_at=datetime(2026, 6, 1, 8, 0, tzinfo=UTC), day=date(2026, 6, 1), tz=AMS)
