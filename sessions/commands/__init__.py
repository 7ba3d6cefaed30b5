"""``/popup``: its words and their parsing (:mod:`.parse`), and what each one does (:mod:`.handlers`)."""

from __future__ import annotations

from sessions.commands.parse import COMMANDS, HELP, StartArgs, parse_start, resolve_day

__all__ = ["COMMANDS", "HELP", "StartArgs", "parse_start", "resolve_day"]
