"""The state tables and the one way to move along them, on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessions.errors import InvalidTransition
from sessions.model import ChannelRef
from sessions.records import ACTIVE_STATES, NewPrompt, NewSession, PromptState, SessionState
from sessions.states import (
    PROMPT_MOVES,
    SESSION_MOVES,
    PromptEvent,
    SessionEvent,
    move_prompt,
    move_session,
    next_prompt_state,
    next_session_state,
)
from storage.sqlite import SqliteStore
from tests.fakes.clock import T0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "db")
    yield opened
    await opened.close()


async def new_session(store: SqliteStore) -> tuple[int, int]:
    """A scheduled session with one pending prompt: their ids."""
    session = await store.create_session(
        NewSession(
            plan_name="p",
            title="P",
            intro="",
            timezone="UTC",
            channel=ChannelRef(platform="fake", channel_id="C1"),
            anonymous=False,
            started_by="org",
            started_at=T0,
            recap_at=T0,
            prompts=(NewPrompt(text="q", due_at=T0),),
        )
    )
    assert session is not None
    [prompt] = await store.prompts(session.id)
    return session.id, prompt.id


async def session_state(store: SqliteStore, session_id: int) -> SessionState:
    session = await store.get_session(session_id)
    assert session is not None
    return session.state


async def prompt_state(store: SqliteStore, session_id: int) -> PromptState:
    [prompt] = await store.prompts(session_id)
    return prompt.state


def test_a_session_lives_scheduled_running_closing_closed() -> None:
    state = SessionState.SCHEDULED
    for event in (SessionEvent.OPENING_POSTED, SessionEvent.CLOSE, SessionEvent.RECAP_POSTED):
        state = next_session_state(state, event)
    assert state is SessionState.CLOSED
    assert next_session_state(SessionState.SCHEDULED, SessionEvent.CLOSE) is SessionState.CLOSING


@pytest.mark.parametrize("state", ACTIVE_STATES)
def test_every_unfinished_session_can_be_cancelled_or_failed(state: SessionState) -> None:
    assert next_session_state(state, SessionEvent.CANCEL) is SessionState.CANCELLED
    assert next_session_state(state, SessionEvent.FAIL) is SessionState.FAILED


@pytest.mark.parametrize("state", [s for s in SessionState if s.is_terminal])
def test_no_move_leaves_a_finished_session(state: SessionState) -> None:
    assert [event for (origin, event) in SESSION_MOVES if origin is state] == []
    for event in SessionEvent:
        with pytest.raises(InvalidTransition, match=f"a session in {state.value} cannot"):
            next_session_state(state, event)


def test_a_prompt_lives_pending_posting_posted_or_is_missed_or_skipped() -> None:
    assert next_prompt_state(PromptState.PENDING, PromptEvent.POST) is PromptState.POSTING
    assert next_prompt_state(PromptState.POSTING, PromptEvent.POSTED) is PromptState.POSTED
    assert next_prompt_state(PromptState.PENDING, PromptEvent.MISS) is PromptState.MISSED
    assert next_prompt_state(PromptState.PENDING, PromptEvent.SKIP) is PromptState.SKIPPED
    ends = {PromptState.POSTED, PromptState.MISSED, PromptState.SKIPPED}
    assert not [move for move in PROMPT_MOVES if move[0] in ends]
    with pytest.raises(InvalidTransition):
        next_prompt_state(PromptState.POSTING, PromptEvent.SKIP)  # one under way is finished first


def test_several_observed_states_must_each_allow_the_move() -> None:
    assert next_session_state(ACTIVE_STATES, SessionEvent.CANCEL) is SessionState.CANCELLED
    with pytest.raises(InvalidTransition, match="running, closed"):
        next_session_state([SessionState.RUNNING, SessionState.CLOSED], SessionEvent.CANCEL)
    with pytest.raises(InvalidTransition):
        next_session_state([], SessionEvent.CANCEL)


async def test_moves_follow_the_table_through_the_store(store: SqliteStore) -> None:
    session_id, prompt_id = await new_session(store)
    assert await move_session(store, session_id, SessionState.SCHEDULED, SessionEvent.OPENING_POSTED)
    assert await move_prompt(store, prompt_id, PromptState.PENDING, PromptEvent.POST)
    assert await move_prompt(store, prompt_id, PromptState.POSTING, PromptEvent.POSTED, at=T0)
    assert await move_session(store, session_id, SessionState.RUNNING, SessionEvent.CLOSE)
    assert await move_session(store, session_id, SessionState.CLOSING, SessionEvent.RECAP_POSTED, at=T0)
    assert await session_state(store, session_id) is SessionState.CLOSED
    [prompt] = await store.prompts(session_id)
    assert (prompt.state, prompt.posted_at) == (PromptState.POSTED, T0)


async def test_a_move_the_table_forbids_raises_and_leaves_the_row_alone(store: SqliteStore) -> None:
    session_id, prompt_id = await new_session(store)
    with pytest.raises(InvalidTransition, match="a session in scheduled cannot 'recap posted'"):
        await move_session(store, session_id, SessionState.SCHEDULED, SessionEvent.RECAP_POSTED)
    with pytest.raises(InvalidTransition, match="a prompt in pending cannot 'posted'"):
        await move_prompt(store, prompt_id, PromptState.PENDING, PromptEvent.POSTED)
    assert await session_state(store, session_id) is SessionState.SCHEDULED
    assert await prompt_state(store, session_id) is PromptState.PENDING


async def test_a_lost_compare_and_set_is_benign(store: SqliteStore) -> None:
    """Someone else moved the row first (a duplicate wake-up, a command): False, nothing changed."""
    session_id, prompt_id = await new_session(store)
    assert not await move_session(store, session_id, SessionState.RUNNING, SessionEvent.CLOSE)
    assert await session_state(store, session_id) is SessionState.SCHEDULED
    assert await move_prompt(store, prompt_id, PromptState.PENDING, PromptEvent.SKIP)
    assert not await move_prompt(store, prompt_id, PromptState.PENDING, PromptEvent.POST)
    assert await prompt_state(store, session_id) is PromptState.SKIPPED
    assert await move_session(store, session_id, ACTIVE_STATES, SessionEvent.CANCEL)
    assert not await move_session(store, session_id, ACTIVE_STATES, SessionEvent.CANCEL)
    assert await session_state(store, session_id) is SessionState.CANCELLED
