"""What the sessions run on: ``[session]`` (time zone, default plan, organisers, late grace),
``[[plans]]`` and their prompts, and ``[[circles]]``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.reader import Reader
from sessions.channels import CHANNEL_REF_FORMS, Circle, parse_channel_ref
from sessions.engine import EngineSettings
from sessions.errors import ConfigError, PlanError
from sessions.model import ChannelRef
from sessions.plans import Offset, Plan, PromptSpec, parse_time, validate_plan
from sessions.rights import ORGANISER_FORMS, Organiser, parse_organiser


def read_engine(session: Reader, plans: tuple[Plan, ...]) -> EngineSettings:
    timezone = session.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise session.fail("timezone", f'{timezone!r} is not an IANA time zone such as "Europe/Amsterdam"') from None
    names = [p.name for p in plans]
    default_plan = session.get("default_plan", str, names[0] if names else "")
    if default_plan not in names:
        known = ", ".join(repr(n) for n in names) or "none"
        raise session.fail("default_plan", f"{default_plan!r} is not a configured plan (plans: {known})")
    organisers = _organisers(session)
    grace_text = session.get("late_grace", str, "15m")
    try:
        grace = parse_time(grace_text if grace_text.startswith("+") else f"+{grace_text}")
    except ValueError as exc:
        raise session.fail("late_grace", str(exc)) from None
    assert isinstance(grace, Offset)
    return EngineSettings(
        default_plan=default_plan,
        timezone=timezone,
        organisers=organisers,
        late_grace=timedelta(seconds=grace.seconds),
    )


def _organisers(session: Reader) -> tuple[Organiser, ...]:
    organisers: list[Organiser] = []
    for index, who in enumerate(session.get("organisers", list, [])):
        organiser = parse_organiser(who) if isinstance(who, str) else None
        if organiser is None:
            raise session.fail(f"organisers[{index}]", f"{who!r} is not a platform-qualified id; use {ORGANISER_FORMS}")
        organisers.append(organiser)
    return tuple(organisers)


def read_plans(root: Reader) -> tuple[Plan, ...]:
    tables = root.get("plans", list, [])
    if not tables:
        raise root.fail("plans", "no [[plans]] configured; add at least one (see config.example.toml)")
    plans: list[Plan] = []
    for index, table in enumerate(tables):
        where = f"plans[{index}]"
        if not isinstance(table, dict):
            raise root.fail(where, "expected a [[plans]] table")
        plan = Reader(root.source, table, where)
        name = plan.get("name", str, required=True).strip()
        if not name or any(ch.isspace() for ch in name):
            raise plan.fail("name", f"{name!r} must be one word (it is typed after /popup start)")
        if name in {p.name for p in plans}:
            raise plan.fail("name", f"{name!r} is used by two plans")
        prompts = []
        prompt_tables = plan.get("prompts", list, [])
        for p_index, p_table in enumerate(prompt_tables):
            if not isinstance(p_table, dict):
                raise plan.fail(f"prompts[{p_index}]", "expected a [[plans.prompts]] table")
            prompt = Reader(root.source, p_table, f"{where}.prompts[{p_index}]")
            prompts.append(PromptSpec(at=_time(prompt, "at"), text=prompt.get("text", str, required=True)))
        built = Plan(
            name=name,
            title=plan.get("title", str, name),
            intro=plan.get("intro", str, ""),
            recap_at=_time(plan, "recap_at"),
            prompts=tuple(prompts),
            anonymous=plan.get("anonymous", bool, False),
            pulse_at=_time(plan, "pulse_at") if "pulse_at" in plan.table else None,
        )
        try:
            validate_plan(built)
        except PlanError as exc:
            raise ConfigError(f"{root.source}: {exc}") from None
        plans.append(built)
    return tuple(plans)


def read_circles(root: Reader, lists: Sequence[str] = ()) -> tuple[Circle, ...]:
    """``[[circles]]``; an ``email:NAME`` ref must name one of ``lists`` (the configured mailing
    lists, when e-mail is on) and takes its spelling."""
    circles: list[Circle] = []
    for index, table in enumerate(root.get("circles", list, [])):
        where = f"circles[{index}]"
        if not isinstance(table, dict):
            raise root.fail(where, "expected a [[circles]] table")
        circle = Reader(root.source, table, where)
        name = circle.get("name", str, required=True).strip()
        if not name or any(ch.isspace() for ch in name):
            raise circle.fail("name", f"{name!r} must be one word (it is typed as circle:NAME)")
        if name in {c.name for c in circles}:
            raise circle.fail("name", f"{name!r} is used by two circles")
        refs = circle.get("channels", list, required=True)
        channels = []
        for c_index, ref in enumerate(refs):
            channel = parse_channel_ref(ref) if isinstance(ref, str) else None
            if channel is None:
                raise circle.fail(f"channels[{c_index}]", f"{ref!r} is not a channel ref; use {CHANNEL_REF_FORMS}")
            if channel.platform == "email" and lists:
                known = next((name for name in lists if name.lower() == channel.channel_id.lower()), None)
                if known is None:
                    raise circle.fail(
                        f"channels[{c_index}]", f"{ref!r} names no list of [[email.lists]] ({', '.join(lists)})"
                    )
                channel = ChannelRef(platform="email", channel_id=known)
            if channel not in channels:
                channels.append(channel)
        if not channels:
            raise circle.fail("channels", "is empty; list the channels the circle meets in")
        circles.append(Circle(name=name, channels=tuple(channels)))
    return tuple(circles)


def _time(table: Reader, key: str) -> Any:
    value = table.get(key, str, required=True)
    try:
        return parse_time(value)
    except ValueError as exc:
        raise table.fail(key, str(exc)) from None
