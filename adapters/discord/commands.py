"""The ``/popup`` application command group (docs/architecture.md §9) and how an invocation is answered.

Discord gives an interaction 3 seconds for its first response, and the engine may need longer (it
posts the opening message before answering ``start``), so every invocation is deferred first,
ephemerally, and the engine's :class:`~sessions.model.CommandReply` follows as a follow-up.

A deferred "thinking" response fixes the visibility of the *first* follow-up (it replaces the
"thinking…" message), so a public answer is a second follow-up after a short private "Done.".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import discord
from discord import app_commands

from adapters.discord.mapping import start_args
from adapters.discord.render import escape

_log = logging.getLogger(__name__)

CONTENT_MAX = 2000
AUTOCOMPLETE_MAX = 25
CHOICE_NAME_MAX = 100

# name -> description, in the order Discord shows them
SIMPLE_COMMANDS: dict[str, str] = {
    "stop": "Close the session now and post the recap",
    "cancel": "End the session without a recap",
    "status": "Show the session's state (only you see it)",
    "next": "Post the next pending prompt now",
    "plans": "List the plans you can start",
    "forget": "Remove your replies from this channel's session and its recap",
    "web": "A one-time sign-in link to the web dashboard (only you see it)",
    "help": "How Popup works",
}
# The order Discord shows the subcommands in (docs/architecture.md §9, then the words for sessions across channels,
# the web and e-mail)
ORDER = (
    "start", "stop", "cancel", "status", "next", "plans", "forget", "join", "leave", "link", "web", "invite", "help",
)

Runner = Callable[[discord.Interaction, str, tuple[str, ...]], Awaitable[None]]


def build_group(*, plan_names: Sequence[str], run: Runner) -> app_commands.Group:
    """``/popup start|stop|cancel|status|next|plans|forget|join|leave|link|web|invite|help``; every
    callback calls ``run``."""
    group = app_commands.Group(
        name="popup",
        description="Run a popup learning session in this channel",
        guild_only=True,  # a session lives in a server channel; DMs have no members to answer
    )

    @group.command(name="start", description="Start a popup session in this channel")
    @app_commands.describe(
        plan="Which plan to run (default: the configured default plan)",
        day="today, tomorrow or YYYY-MM-DD (for plans with clock times)",
        anonymous="Leave names out of the recap",
    )
    async def start(
        interaction: discord.Interaction,
        plan: str | None = None,
        day: str | None = None,
        anonymous: bool = False,
    ) -> None:
        await run(interaction, "start", start_args(plan, day, anonymous))

    @start.autocomplete("plan")
    async def plan_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return plan_autocomplete(plan_names, current)

    group.add_command(_join(run))
    group.add_command(_link(run))
    group.add_command(_invite(run))
    group.add_command(_leave(run))
    for name, description in SIMPLE_COMMANDS.items():
        group.add_command(_simple(name, description, run))
    # Discord lists subcommands in the order they were added: put them in ORDER.
    commands = {command.name: command for command in group.commands}
    for command in list(commands.values()):
        group.remove_command(command.name)
    for name in ORDER:
        group.add_command(commands[name])
    return group


def _join(run: Runner) -> app_commands.Command[app_commands.Group, ..., None]:
    @app_commands.describe(code="The join code from the answer to /popup start")
    async def join(interaction: discord.Interaction, code: str) -> None:
        await run(interaction, "join", (code.strip(),))

    return app_commands.Command(
        name="join", description="Bring this channel into a running session (any platform)", callback=join
    )


def _link(run: Runner) -> app_commands.Command[app_commands.Group, ..., None]:
    @app_commands.describe(code="The code /popup link gave you on the other platform (leave out to get one)")
    async def link(interaction: discord.Interaction, code: str | None = None) -> None:
        await run(interaction, "link", (code.strip(),) if code and code.strip() else ())

    return app_commands.Command(name="link", description="Count you as one person across platforms", callback=link)


def _invite(run: Runner) -> app_commands.Command[app_commands.Group, ..., None]:
    @app_commands.describe(target="The mailing list to bring in, as email:NAME (a list in the bot's [[email.lists]])")
    async def invite(interaction: discord.Interaction, target: str) -> None:
        await run(interaction, "invite", (target.strip(),))

    return app_commands.Command(
        name="invite", description="Bring a mailing list into this channel's session", callback=invite
    )


def _leave(run: Runner) -> app_commands.Command[app_commands.Group, ..., None]:
    @app_commands.describe(target="An invited list to take out instead, as email:NAME (leave out: this channel)")
    async def leave(interaction: discord.Interaction, target: str | None = None) -> None:
        await run(interaction, "leave", (target.strip(),) if target and target.strip() else ())

    return app_commands.Command(
        name="leave",
        description="Take this channel (or an invited list) out of its session; replies stay",
        callback=leave,
    )


def plan_autocomplete(plan_names: Sequence[str], current: str) -> list[app_commands.Choice[str]]:
    """Plans whose name contains what was typed so far, case-insensitively; at most 25."""
    needle = current.casefold().strip()
    matches = [name for name in plan_names if needle in name.casefold()]
    return [
        app_commands.Choice(name=name[:CHOICE_NAME_MAX], value=name[:CHOICE_NAME_MAX])
        for name in matches[:AUTOCOMPLETE_MAX]
    ]


def _simple(name: str, description: str, run: Runner) -> app_commands.Command[app_commands.Group, ..., None]:
    async def callback(interaction: discord.Interaction) -> None:
        await run(interaction, name, ())

    return app_commands.Command(name=name, description=description, callback=callback)


def split_reply(text: str) -> list[str]:
    """A reply's text, escaped and cut into message-sized pieces (at line ends where possible)."""
    pieces: list[str] = []
    current = ""
    for line in escape(text).split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= CONTENT_MAX:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = line
        while len(current) > CONTENT_MAX:
            pieces.append(current[:CONTENT_MAX])
            current = current[CONTENT_MAX:]
    if current or not pieces:
        pieces.append(current or "Done.")
    return pieces


async def answer(interaction: discord.Interaction, text: str, *, ephemeral: bool) -> None:
    """Send the engine's answer after :func:`defer`; see the module docstring for the two steps."""
    none = discord.AllowedMentions.none()
    pieces = split_reply(text)
    if not ephemeral:
        await interaction.followup.send("Done.", ephemeral=True, allowed_mentions=none)
    for piece in pieces:
        await interaction.followup.send(piece, ephemeral=ephemeral, allowed_mentions=none)
