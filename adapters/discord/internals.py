"""What Popup leans on inside discord.py beyond its documented API, checked where it is used.

discord.py has no public hook for bounding inbound events (:mod:`adapters.discord.backpressure`)
or for where to connect and resume (:mod:`adapters.discord.endpoints`), so the client uses:

* ``Client._schedule_event``: the one place a dispatched event becomes a handler task (counted);
* ``Client.ws``: ``Client.connect`` assigns every new gateway websocket to it, then loops on
  ``ws.poll_event()`` (held back while too many events are in flight);
* ``DiscordWebSocket._keep_alive`` and ``KeepAliveHandler.tick``: the heartbeat thread, told the
  link is alive while reading is paused;
* ``DiscordWebSocket.gateway``: where the next RESUME connects (kept on the configured gateway);
* ``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY``: the REST and gateway bases.

pyproject.toml allows only the minor release these were read from. A release that moves one must
stop the adapter at start-up with an :class:`~sessions.errors.IncompatibleLibrary` naming it, not
let it run on without backpressure or keep-alive: :func:`check_classes` runs before connecting,
:func:`keep_alive` on every new websocket, :func:`require_gateway` on every READY, and
:meth:`adapters.discord.client.PopupClient.check_wiring` once the first READY is handled.
``tests/test_private_apis.py`` names each of them against the installed discord.py.
"""

from __future__ import annotations

from collections.abc import Callable

import discord
from discord.gateway import DiscordWebSocket, KeepAliveHandler
from discord.http import Route

from sessions.errors import IncompatibleLibrary

SUPPORTED = "discord.py>=2.7,<2.8"

# (owner, attribute, what Popup needs it for)
_CLASS_ATTRIBUTES: tuple[tuple[type, str, str], ...] = (
    (discord.Client, "_schedule_event", "counting the event handlers in flight (gateway backpressure)"),
    (DiscordWebSocket, "poll_event", "pausing gateway reads (gateway backpressure)"),
    (KeepAliveHandler, "tick", "keeping a paused gateway connection alive"),
    (Route, "BASE", "[discord] api_base_url"),
    (DiscordWebSocket, "DEFAULT_GATEWAY", "[discord] gateway_url"),
)


def missing_internal(owner: str, attribute: str, need: str) -> IncompatibleLibrary:
    """The error for a discord.py that lacks ``owner.attribute``: names it, the version and the range."""
    return IncompatibleLibrary(
        f"discord.py {discord.__version__} has no {owner}.{attribute}, which Popup needs for {need}; "
        f"install a supported release ({SUPPORTED}, as pyproject.toml says)"
    )


def check_classes() -> None:
    """Raise :class:`IncompatibleLibrary` unless every class-level internal is there."""
    for owner, attribute, need in _CLASS_ATTRIBUTES:
        if not hasattr(owner, attribute):
            raise missing_internal(owner.__name__, attribute, need)


def keep_alive(ws: DiscordWebSocket) -> Callable[[], None]:
    """A function that tells ``ws``'s heartbeat thread the link is alive (a frame just arrived)."""
    if not hasattr(ws, "_keep_alive"):
        raise missing_internal("DiscordWebSocket", "_keep_alive", "keeping a paused gateway connection alive")

    def tick() -> None:
        handler = ws._keep_alive  # set at HELLO; None once the socket closed
        if handler is not None:
            handler.tick()

    return tick


def require_gateway(ws: DiscordWebSocket) -> None:
    """Raise unless ``ws`` keeps its resume URL where :class:`PopupClient` re-points it."""
    if not hasattr(ws, "gateway"):
        raise missing_internal("DiscordWebSocket", "gateway", "resuming through [discord] gateway_url")
