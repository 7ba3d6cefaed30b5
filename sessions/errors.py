"""The one exception tree of Popup: every error we raise on purpose is a :class:`PopupError`."""

from __future__ import annotations


class PopupError(Exception):
    """Base of every error Popup raises on purpose."""


class ConfigError(PopupError):
    """The configuration file is unreadable or names a bad value.

    The message is one line that names the key (or file) and the offending value.
    """


class PlanError(ConfigError):
    """A plan is invalid; the message names the plan and the field."""


class CommandError(PopupError):
    """A command cannot be carried out; the message is shown to the person who typed it."""


class PermissionDenied(CommandError):
    """The member may not use this command (only organisers may)."""


class ChannelBusy(CommandError):
    """A channel cannot join a session: another session still running holds it."""


class InvalidTransition(PopupError):
    """A session or prompt was asked to move to a state it cannot reach from its current one."""


class DeliveryError(PopupError):
    """A platform refused or failed a post; the outbound ledger keeps it for a retry."""


class StorageError(PopupError):
    """The database cannot be opened or is of an unknown schema version."""


class NotStored(PopupError):
    """An inbound event was not made durable: the engine failed on it, or had not finished in time.

    An adapter never takes such an event as seen: it fails the platform's delivery so the platform
    sends it again (Slack), holds it and hands it over again itself (Discord), or tells whoever
    typed it (console). ``key`` is the platform's delivery id where it has one.
    """

    def __init__(self, key: str | None) -> None:
        super().__init__(f"event {key} not stored")
        self.key = key


class IncompatibleLibrary(PopupError):
    """An installed library lacks an internal Popup leans on (a release pyproject.toml does not allow).

    The message names the library, its installed version and the missing attribute.
    """
