"""The whole life of a session and of each of its prompts, as two tables of legal moves.

Read the tables top to bottom: that is a session's day. Every state change the engine makes goes
through :func:`move_session` or :func:`move_prompt`, which check the table and then compare-and-set
the row through the store. A move the table forbids is a bug (:class:`InvalidTransition`); a lost
compare-and-set is not: someone else (a duplicate wake-up, a command) moved the row first, and the
caller gets False and leaves it be.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypeVar

from sessions.errors import InvalidTransition
from sessions.records import PromptState, SessionState
from sessions.store import Store


class SessionEvent(enum.StrEnum):
    OPENING_POSTED = "opening posted"  # in every channel of the session
    CLOSE = "close"  # the recap is due, or an organiser said /popup stop
    RECAP_POSTED = "recap posted"
    CANCEL = "cancel"  # /popup cancel: no recap
    FAIL = "fail"  # given up on for good (the state exists; nothing in the engine gives up yet)


class PromptEvent(enum.StrEnum):
    POST = "post"  # due (or /popup next): the post is under way
    POSTED = "posted"  # the ledger has the platform's message id in every channel
    MISS = "miss"  # fell due while the bot was down, and is later than the grace allows
    SKIP = "skip"  # the session ended before it was due


_State = TypeVar("_State", SessionState, PromptState)
_Event = TypeVar("_Event", SessionEvent, PromptEvent)

_S = SessionState

SESSION_MOVES: Mapping[tuple[SessionState, SessionEvent], SessionState] = {
    (_S.SCHEDULED, SessionEvent.OPENING_POSTED): _S.RUNNING,
    # A session stopped before its opening could be posted closes all the same.
    (_S.SCHEDULED, SessionEvent.CLOSE): _S.CLOSING,
    (_S.RUNNING, SessionEvent.CLOSE): _S.CLOSING,
    # Closing lasts until the due prompts and then the recap are out, through any outage.
    (_S.CLOSING, SessionEvent.RECAP_POSTED): _S.CLOSED,
    # Cancelled or failed from wherever it is, until it has ended.
    (_S.SCHEDULED, SessionEvent.CANCEL): _S.CANCELLED,
    (_S.RUNNING, SessionEvent.CANCEL): _S.CANCELLED,
    (_S.CLOSING, SessionEvent.CANCEL): _S.CANCELLED,
    (_S.SCHEDULED, SessionEvent.FAIL): _S.FAILED,
    (_S.RUNNING, SessionEvent.FAIL): _S.FAILED,
    (_S.CLOSING, SessionEvent.FAIL): _S.FAILED,
    # closed, cancelled and failed are terminal: no move leaves them.
}

_P = PromptState

PROMPT_MOVES: Mapping[tuple[PromptState, PromptEvent], PromptState] = {
    (_P.PENDING, PromptEvent.POST): _P.POSTING,
    # A crash while posting leaves the prompt posting; the ledger finds or makes its post later.
    (_P.POSTING, PromptEvent.POSTED): _P.POSTED,
    (_P.PENDING, PromptEvent.MISS): _P.MISSED,
    # Only a prompt not yet under way is skipped; a close posts one under way before its recap.
    (_P.PENDING, PromptEvent.SKIP): _P.SKIPPED,
}


def next_session_state(observed: SessionState | Iterable[SessionState], event: SessionEvent) -> SessionState:
    """Where ``event`` takes a session in (any of) ``observed``; :class:`InvalidTransition` if nowhere."""
    return _target("session", SESSION_MOVES, observed, event)


def next_prompt_state(observed: PromptState | Iterable[PromptState], event: PromptEvent) -> PromptState:
    """Where ``event`` takes a prompt in (any of) ``observed``; :class:`InvalidTransition` if nowhere."""
    return _target("prompt", PROMPT_MOVES, observed, event)


async def move_session(
    store: Store,
    session_id: int,
    observed: SessionState | Iterable[SessionState],
    event: SessionEvent,
    *,
    at: datetime | None = None,
) -> bool:
    """Move the session on ``event`` from the state it was seen in; False if it had moved meanwhile.

    ``observed`` may name several states when the caller has not read the row under a lock (a
    cancel may meet a session that has just opened or started closing); each must allow ``event``.
    """
    states = _as_tuple(observed)
    new = next_session_state(states, event)
    return await store.set_session_state(session_id, states, new, at=at)


async def move_prompt(
    store: Store,
    prompt_id: int,
    observed: PromptState | Iterable[PromptState],
    event: PromptEvent,
    *,
    at: datetime | None = None,
) -> bool:
    """Move the prompt on ``event`` from the state it was seen in; False if it had moved meanwhile."""
    states = _as_tuple(observed)
    new = next_prompt_state(states, event)
    return await store.set_prompt_state(prompt_id, states, new, at=at)


def _as_tuple(observed: _State | Iterable[_State]) -> tuple[_State, ...]:
    # Both state kinds are StrEnums, and so iterable strings themselves: test for a member first.
    if isinstance(observed, enum.Enum):
        return (observed,)
    return tuple(observed)


def _target(
    kind: str, moves: Mapping[tuple[_State, _Event], _State], observed: _State | Iterable[_State], event: _Event
) -> _State:
    states = _as_tuple(observed)
    targets = {moves.get((state, event)) for state in states}
    if not states or None in targets or len(targets) != 1:
        seen = ", ".join(state.value for state in states) or "no state"
        raise InvalidTransition(f"a {kind} in {seen} cannot {event.value!r}")
    (new,) = targets
    assert new is not None
    return new
