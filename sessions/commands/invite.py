"""``/popup invite email:NAME`` and ``/popup leave email:NAME``: which configured mailing list the
organiser names (a list has no channel to type a command in, so it is named from one that does).

Attaching it and catching it up is ``/popup join``'s own path (``ChannelWords._attach``); this
module only reads the word and checks it against the lists the e-mail adapter was configured with.
"""

from __future__ import annotations

from collections.abc import Sequence

from sessions.errors import CommandError
from sessions.model import ChannelRef

PLATFORM = "email"


def usage(word: str) -> str:
    return f"Usage: /popup {word} email:NAME (a list named in the bot's [[email.lists]])"


def invited_list(args: Sequence[str], configured: Sequence[str], *, word: str = "invite") -> ChannelRef:
    """``email:NAME`` as the list's channel, named as configured (list names match in any case, so
    ``email:Learning`` and ``email:learning`` are one channel). ``word`` is the command, for the
    usage line."""
    if len(args) != 1:
        raise CommandError(usage(word))
    platform, _, name = args[0].partition(":")
    if platform.lower() != PLATFORM or not name:
        raise CommandError(f"I can {word} mailing lists: {usage(word)}")
    if not configured:
        raise CommandError("Popup has no mailing lists here: [email] is off, or has no [[email.lists]].")
    match = next((known for known in configured if known.lower() == name.lower()), None)
    if match is None:
        raise CommandError(f"There is no {PLATFORM} channel {name!r} (configured: {', '.join(configured)}).")
    return ChannelRef(platform=PLATFORM, channel_id=match)
