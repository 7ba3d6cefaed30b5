"""Where discord.py talks to: the one place that applies ``[discord] api_base_url``/``gateway_url``.

discord.py has no per-client setting for either. The REST base is the class attribute
``discord.http.Route.BASE`` (read by every ``Route``, including interaction callbacks and webhook
follow-ups, which share that class), and a plain ``Client`` connects straight to the class
attribute ``DiscordWebSocket.DEFAULT_GATEWAY`` (only the auto-sharded client asks ``GET
/gateway/bot``). Both are process-wide, so we set them for the adapter's lifetime and put the old
values back on stop; Popup runs at most one Discord adapter per process.

After READY, discord.py resumes at the ``resume_gateway_url`` the gateway handed out. Behind a
gateway proxy that URL is Discord's own host, which is exactly what the proxy is there to avoid
(and an unreachable resume URL makes discord.py retry it forever), so with ``gateway_url`` set the
client resumes through the configured gateway too (:func:`pinned_gateway`). A resume the far end
does not accept costs only a fresh IDENTIFY, after which the adapter back-fills its threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.settings import DiscordSettings

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The values that were in place before :func:`apply_endpoints`, to give back on stop."""

    api_base: str
    gateway: yarl.URL

    def restore(self) -> None:
        Route.BASE = self.api_base
        DiscordWebSocket.DEFAULT_GATEWAY = self.gateway


def apply_endpoints(settings: DiscordSettings) -> Endpoints:
    """Point discord.py at the configured REST/gateway bases; returns what to restore later."""
    previous = Endpoints(api_base=Route.BASE, gateway=DiscordWebSocket.DEFAULT_GATEWAY)
    if settings.api_base_url:
        # Route appends paths like "/channels/1/messages", so a trailing "/" would double up.
        Route.BASE = settings.api_base_url.rstrip("/")
        _log.info("Discord REST requests go to %s", Route.BASE)
    if settings.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
        _log.info("Discord gateway connections go to %s", settings.gateway_url)
    return previous


def pinned_gateway(settings: DiscordSettings) -> yarl.URL | None:
    """Where to resume a gateway session: the configured gateway, or ``None`` for Discord's choice."""
    return yarl.URL(settings.gateway_url) if settings.gateway_url else None
