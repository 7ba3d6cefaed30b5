"""What each ``/popup`` word does, and what the asker is told.

The handlers read and create sessions through the store; moving a session along (opening,
closing, cancelling, posting a prompt now) is the engine's, reached through :class:`SessionControl`.
The words that change a session's channels (join, invite, leave) are :mod:`sessions.commands.channels`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from sessions import compose, rights
from sessions.channels import names_of, platform_label, where
from sessions.commands.channels import ChannelWords
from sessions.commands.control import SessionControl as SessionControl
from sessions.commands.parse import HELP, new_code, parse_code, parse_start, resolve_day
from sessions.errors import CommandError, PermissionDenied, PlanError
from sessions.model import ChannelRef, CommandInvoked, CommandReply
from sessions.plans import ClockTime, Plan, build_timetable
from sessions.records import NewPrompt, NewSession, PromptState, SessionRecord, SessionState
from sessions.settings import EngineSettings
from sessions.store import Store
from sessions.wakeups import Clock
from sessions.web import WebOutlet

_log = logging.getLogger(__name__)

Handler = Callable[[CommandInvoked], Awaitable[CommandReply]]

LINK_CODE_LIFETIME = timedelta(minutes=15)


class CommandHandlers:
    def __init__(
        self,
        *,
        store: Store,
        plans: Mapping[str, Plan],
        settings: EngineSettings,
        clock: Clock,
        control: SessionControl,
        web: WebOutlet | None = None,
    ) -> None:
        self._store = store
        self._plans = plans
        self._settings = settings
        self._clock = clock
        self._control = control
        self._web = web
        channels = ChannelWords(
            store=store, settings=settings, control=control, require=self._require, active=self._active
        )
        self._handlers: dict[str, Handler] = {
            "start": self._start,
            "stop": self._stop,
            "cancel": self._cancel,
            "status": self._status,
            "next": self._next,
            "plans": self._plans_list,
            "forget": self._forget,
            "join": channels.join,
            "leave": channels.leave,
            "link": self._link,
            "web": self._web_sign_in,
            "invite": channels.invite,
        }

    async def handle(self, command: CommandInvoked) -> CommandReply:
        handler = self._handlers.get(command.name.lower())
        if handler is None:
            return CommandReply(text=HELP)
        try:
            return await handler(command)
        except CommandError as exc:
            return CommandReply(text=str(exc))
        except Exception:
            _log.exception("command %s failed", command.name)
            return CommandReply(text="Sorry, that went wrong on my side; the organisers can find details in my log.")

    def _require(self, word: str, command: CommandInvoked, session: SessionRecord | None) -> None:
        """Refuse ``/popup WORD`` unless :func:`sessions.rights.may_run` allows it on ``session``."""
        organisers = self._settings.organisers
        if rights.may_run(command.member, word, session, organisers):
            return
        member = command.member
        _log.info("refused /popup %s from %s user %s in %s", word, member.platform, member.user_id,
                  command.channel.channel_id)
        raise PermissionDenied(rights.refusal(word, organisers))

    async def _active(self, command: CommandInvoked) -> SessionRecord:
        session = await self._store.active_session(command.channel)
        if session is None:
            raise CommandError("No popup session is running in this channel. Start one with /popup start.")
        return session

    async def _start(self, command: CommandInvoked) -> CommandReply:
        self._require("start", command, None)
        args = parse_start(command.args, self._plans)
        plan = self._plans.get(args.plan or self._settings.default_plan)
        circle, unreachable = self._circle(args.circle, command.channel)
        if plan is None:
            raise CommandError(f"The default plan {self._settings.default_plan!r} is not configured.")
        tz = ZoneInfo(self._settings.timezone)
        now = self._clock()
        day = resolve_day(args.day, now.astimezone(tz).date())
        try:
            timetable = build_timetable(plan, started_at=now, day=day, tz=tz)
        except PlanError as exc:
            raise CommandError(str(exc)) from exc
        passed = [
            str(spec.at)
            for spec, due in zip(plan.prompts, timetable.prompts, strict=True)
            if isinstance(spec.at, ClockTime) and due < now
        ]
        if passed:
            raise CommandError(
                f"Prompt time {passed[0]} has already passed on {day.isoformat()}. "
                f"Say /popup start {plan.name} tomorrow (or a later YYYY-MM-DD)."
            )
        names = {c: n for c in (command.channel, *circle) if (n := await self._control.channel_name(c))}
        new = NewSession(
            plan_name=plan.name,
            title=plan.title,
            intro=plan.intro,
            timezone=self._settings.timezone,
            channel=command.channel,
            anonymous=args.anonymous or plan.anonymous,
            started_by=command.member.user_id,
            started_at=now,
            recap_at=timetable.recap_at,
            prompts=tuple(
                NewPrompt(text=spec.text, due_at=due) for spec, due in zip(plan.prompts, timetable.prompts, strict=True)
            ),
            join_code=new_code(),
            pulse_at=timetable.pulse_at,
            more_channels=circle,
            channel_names=names,
        )
        session = await self._store.create_session(new)
        if session is None:
            running = await self._store.active_session(command.channel)
            what = f" (#{running.id} “{running.title}”)" if running else ""
            raise CommandError(
                f"A popup session is already running in this channel{what}. "
                "Stop or cancel it first, or start one in another channel."
            )
        await self._control.open_session(session.id)
        first = compose.local_time(timetable.prompts[0], session.timezone)
        recap = compose.local_time(timetable.recap_at, session.timezone)
        lines = [
            f"Started session #{session.id} “{plan.title}”: {len(plan.prompts)} prompts from {first}, "
            f"recap at {recap}.",
            *self._page_lines(session),
            "To run it in more channels, on any platform, type there:",
            f"/popup join {session.join_code}",
        ]
        if circle:
            left_out = [c for c in circle if c not in session.channels]
            lines.append(f"Circle {args.circle}: started in {len(session.channels)} channels.")
            if left_out:
                busy = ", ".join(where(c, names.get(c)) for c in left_out)
                lines.append(f"Already busy with another session: {busy}")
        if unreachable:
            lines.append("Not started (Popup does not run there): " + ", ".join(where(c) for c in unreachable))
        return CommandReply(text="\n".join(lines))

    def _circle(self, name: str | None, here: ChannelRef) -> tuple[tuple[ChannelRef, ...], tuple[ChannelRef, ...]]:
        """The circle's other channels that an adapter reaches, and the ones none does."""
        if name is None:
            return (), ()
        circle = next((c for c in self._settings.circles if c.name == name), None)
        if circle is None:
            known = ", ".join(c.name for c in self._settings.circles) or "none configured"
            raise CommandError(f"There is no circle {name!r} (circles: {known}).")
        others = tuple(c for c in circle.channels if c != here)
        return (
            tuple(c for c in others if self._control.reaches(c)),
            tuple(c for c in others if not self._control.reaches(c)),
        )

    async def _stop(self, command: CommandInvoked) -> CommandReply:
        session = await self._active(command)
        self._require("stop", command, session)
        await self._control.close_session(session.id)
        closed = await self._store.get_session(session.id)
        if closed is not None and closed.state is SessionState.CLOSED:
            return CommandReply(text=f"Session #{session.id} closed; the recap is posted.")
        return CommandReply(text=f"Session #{session.id} is closing; the recap follows as soon as it can be posted.")

    async def _cancel(self, command: CommandInvoked) -> CommandReply:
        session = await self._active(command)
        self._require("cancel", command, session)
        if not await self._control.cancel_session(session):
            raise CommandError("That session has just ended.")
        return CommandReply(text=f"Session #{session.id} cancelled; no recap will be posted.")

    async def _status(self, command: CommandInvoked) -> CommandReply:
        session = await self._store.active_session(command.channel) or await self._store.latest_session(command.channel)
        if session is None:
            return CommandReply(text="No popup session has run in this channel yet. Start one with /popup start.")
        prompts = await self._store.prompts(session.id)
        stats = await self._store.session_stats(session.id)
        text = compose.status(session, prompts, stats)
        if len(session.channels) > 1:
            text += "\n" + "\n".join(await self._channel_lines(session))
        if not session.state.is_terminal:
            text += "".join(f"\n{line}" for line in self._page_lines(session))
        return CommandReply(text=text)

    async def _channel_lines(self, session: SessionRecord) -> list[str]:
        """``Channels:`` and a line per channel with its platform and figures."""
        per_channel = {f.channel: f for f in await self._store.channel_figures(session.id)}
        names = names_of(await self._store.session_channels(session.id))
        platforms = sorted({platform_label(c.platform) for c in session.channels})
        head = f"Channels: {len(session.channels)} on {', '.join(platforms)}"
        return [head, *(f"• {line}" for line in compose.channel_lines(session.channels, per_channel, names))]

    def _page_lines(self, session: SessionRecord) -> list[str]:
        """With the web on, where people without the chat answer: the session's page."""
        if self._web is None:
            return []
        return [f"The session's web page (anyone with it can answer): {self._web.page_url(session.id)}"]

    async def _web_sign_in(self, command: CommandInvoked) -> CommandReply:
        if self._web is None:
            raise CommandError("The web side is not switched on ([web] enabled = true in the config).")
        self._require("start", command, None)  # the dashboard is for those who may run sessions
        link = await self._web.sign_in_link(command.member)
        return CommandReply(
            text="Your sign-in link to the dashboard (only you see it; it works once, and only for a few "
            f"minutes): {link}",
            ephemeral=True,
        )

    async def _next(self, command: CommandInvoked) -> CommandReply:
        session = await self._active(command)
        self._require("next", command, session)
        prompts = await self._store.prompts(session.id)
        upcoming = next((p for p in prompts if p.state is PromptState.PENDING), None)
        if upcoming is None:
            raise CommandError("Every prompt of this session is already out. /popup stop closes it with the recap.")
        await self._control.post_prompt_now(session.id, upcoming.id)
        return CommandReply(text=f"Prompt {upcoming.position} of {len(prompts)} posted.")

    async def _plans_list(self, command: CommandInvoked) -> CommandReply:
        lines = []
        for plan in self._plans.values():
            default = " (default)" if plan.name == self._settings.default_plan else ""
            times = ", ".join(str(p.at) for p in plan.prompts)
            lines.append(
                f"{plan.name}{default}: “{plan.title}”, {len(plan.prompts)} prompts at {times}; recap {plan.recap_at}"
            )
        return CommandReply(text="\n".join(lines) or "No plans are configured.")

    async def _forget(self, command: CommandInvoked) -> CommandReply:
        session = await self._store.active_session(command.channel) or await self._store.latest_session(command.channel)
        if session is None:
            raise CommandError("No popup session has run in this channel, so there is nothing to forget.")
        removed = await self._store.forget_author(session.id, command.member.platform, command.member.user_id)
        already = " The recap already posted can't be changed, but" if session.state is SessionState.CLOSED else ""
        return CommandReply(
            text=f"Removed your {removed} repl{'ies' if removed != 1 else 'y'} from session #{session.id}."
            f"{already} Exports and artifacts made from now on leave them out."
        )

    async def _link(self, command: CommandInvoked) -> CommandReply:
        member = command.member
        now = self._clock()
        if not command.args:
            code = new_code()
            await self._store.add_link_code(code, member.platform, member.user_id, at=now)
            minutes = int(LINK_CODE_LIFETIME.total_seconds() // 60)
            return CommandReply(
                text=f"To be counted as one person with your account on another platform, type this there "
                f"within {minutes} minutes (it works once):\n/popup link {code}"
            )
        code = parse_code(command.args, "Usage: /popup link (for a code), then /popup link CODE on the other platform.")
        maker = await self._store.redeem_link_code(
            code, member.platform, member.user_id, at=now, not_before=now - LINK_CODE_LIFETIME
        )
        if maker is None:
            raise CommandError(
                "That link code is unknown, used or expired. Say /popup link on the other platform for a new one."
            )
        return CommandReply(
            text=f"Linked: your replies here and as {platform_label(maker[0])} user {maker[1]} now count as one "
            "person's in recaps made from now on."
        )
