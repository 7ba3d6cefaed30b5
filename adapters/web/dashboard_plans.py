"""The dashboard's plans: the form that makes or edits a plan, who may save it, and plans as the
dashboard edits them and the database keeps them (JSON in ``web_plans``).

Plans of the config file are shown, never replaced; a plan made here belongs to whoever made it
(and the organisers and admins).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from aiohttp import web

from adapters.web.context import WebContext
from adapters.web.render import render
from adapters.web.server import csrf_of, form_text
from sessions import rights
from sessions.errors import PlanError
from sessions.model import Member
from sessions.plans import Plan, PromptSpec, TimeSpec, parse_time, validate_plan
from sessions.web import StoredPlan, author_key

_log = logging.getLogger(__name__)


class PlanRoutes:
    """The plan pages of :class:`adapters.web.dashboard.DashboardRoutes`, which routes them."""

    def __init__(self, ctx: WebContext, organiser: Callable[[web.Request], Member]) -> None:
        self._ctx = ctx
        self._organiser = organiser  # the signed-in organiser, or 403

    async def plan_form(self, request: web.Request) -> web.Response:
        ctx = self._ctx
        member = self._organiser(request)
        name = request.match_info.get("name")
        plan = ctx.plans.get(name) if name else None
        if name and plan is None:
            raise web.HTTPNotFound(text="No such plan.")
        stored = {p.name: p for p in await ctx.store.web_plans()}
        editable = plan is None or (plan.name in stored and self._may_edit(member, stored[plan.name]))
        return self._plan_page(
            request,
            member,
            plan_fields(plan) if plan else {},
            editable=editable,
            configured=plan is not None and plan.name in ctx.plans.configured,
            problem="",
        )

    def _plan_page(
        self,
        request: web.Request,
        member: Member,
        fields: dict[str, str],
        *,
        editable: bool,
        configured: bool,
        problem: str,
        status: int = 200,
    ) -> web.Response:
        html = render(
            "plan_edit.html.j2",
            member=member,
            fields=fields,
            editable=editable and rights.may_run(member, "start", None, self._ctx.engine.organisers),
            configured=configured,
            problem=problem,
            csrf=csrf_of(request),
            feed_url="/feed.xml",
        )
        return web.Response(text=html, content_type="text/html", status=status)

    def _may_edit(self, member: Member, stored: StoredPlan) -> bool:
        organisers = self._ctx.engine.organisers
        if member.is_admin or stored.created_by == author_key(member):
            return True
        return bool(organisers) and any(o.matches(member) for o in organisers)

    async def plan_save(self, request: web.Request) -> web.Response:
        ctx = self._ctx
        member = self._organiser(request)
        if not rights.may_run(member, "start", None, ctx.engine.organisers):
            raise web.HTTPForbidden(text="Only the organisers can make plans.")
        form = await request.post()
        fields = {key: form_text(form, key) for key in ("name", "title", "intro", "recap_at", "prompts", "anonymous")}
        name = fields["name"].strip()
        if name in ctx.plans.configured:
            return self._plan_page(
                request,
                member,
                fields,
                editable=True,
                configured=False,
                status=400,
                problem=f"{name!r} is a plan of the config file; choose another name.",
            )
        stored = {p.name: p for p in await ctx.store.web_plans()}
        if name in stored and not self._may_edit(member, stored[name]):
            return self._plan_page(
                request,
                member,
                fields,
                editable=True,
                configured=False,
                status=403,
                problem=f"The plan {name!r} is someone else's; choose another name.",
            )
        try:
            plan = plan_from_fields(fields)
        except PlanError as exc:
            return self._plan_page(
                request, member, fields, editable=True, configured=False, status=400, problem=str(exc)
            )
        record = StoredPlan(name=plan.name, plan=plan_json(plan), created_by=author_key(member), updated_at=ctx.now())
        await ctx.store.save_web_plan(record)
        ctx.plans.put(plan)
        _log.info("web: plan %r saved by %s user %s", plan.name, member.platform, member.user_id)
        raise web.HTTPSeeOther("/dash")


# -- plans as the dashboard edits them and the database keeps them ------------------------------------


def plan_fields(plan: Plan) -> dict[str, str]:
    return {
        "name": plan.name,
        "title": plan.title,
        "intro": plan.intro,
        "recap_at": str(plan.recap_at),
        "prompts": "\n".join(f"{p.at} {p.text}" for p in plan.prompts),
        "anonymous": "yes" if plan.anonymous else "",
    }


def plan_from_fields(fields: dict[str, str]) -> Plan:
    """A plan from the dashboard's form; :class:`PlanError` names what is wrong."""
    name = fields.get("name", "").strip()
    if not name or any(ch.isspace() for ch in name) or len(name) > 40:
        raise PlanError("The name must be one word of at most 40 characters (it is typed after /popup start).")
    prompts = []
    for number, line in enumerate(_lines(fields.get("prompts", "")), start=1):
        at, _, text = line.partition(" ")
        prompts.append(PromptSpec(at=_time(at, f"prompt line {number}"), text=text.strip() or _missing(number)))
    plan = Plan(
        name=name,
        title=fields.get("title", "").strip() or name,
        intro=fields.get("intro", "").replace("\r\n", "\n").strip(),
        recap_at=_time(fields.get("recap_at", "").strip(), "recap time"),
        prompts=tuple(prompts),
        anonymous=fields.get("anonymous") == "yes",
    )
    validate_plan(plan)
    return plan


def _lines(text: str) -> Iterable[str]:
    return (line.strip() for line in text.splitlines() if line.strip())


def _missing(number: int) -> str:
    raise PlanError(f"Prompt line {number} has a time but no text: write it as “09:00 What did you learn?”.")


def _time(value: str, what: str) -> TimeSpec:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise PlanError(f"The {what}: {exc}.") from None


def plan_json(plan: Plan) -> str:
    return json.dumps(
        {
            "title": plan.title,
            "intro": plan.intro,
            "recap_at": str(plan.recap_at),
            "prompts": [{"at": str(p.at), "text": p.text} for p in plan.prompts],
            "anonymous": plan.anonymous,
        },
        ensure_ascii=False,
    )


def plan_from_json(name: str, text: str) -> Plan:
    data = json.loads(text)
    plan = Plan(
        name=name,
        title=str(data["title"]),
        intro=str(data["intro"]),
        recap_at=parse_time(data["recap_at"]),
        prompts=tuple(PromptSpec(at=parse_time(p["at"]), text=str(p["text"])) for p in data["prompts"]),
        anonymous=bool(data.get("anonymous", False)),
    )
    validate_plan(plan)
    return plan
