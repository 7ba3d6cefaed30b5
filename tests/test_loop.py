"""The event loop `popup` runs on, and the heap settling it does once started."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from bot import loop


def test_uvloop_is_used_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv("POPUP_EVENT_LOOP", raising=False)
    assert loop.loop_factory() is uvloop.new_event_loop

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loop.run(which()).startswith("uvloop")


def test_asyncio_loop_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POPUP_EVENT_LOOP", "asyncio")
    assert loop.loop_factory() is None

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loop.run(which()).startswith("asyncio")


def test_tuning_for_serving_freezes_start_up_and_tunes_the_collector_and_the_gil() -> None:
    # In a process of its own: freezing the test runner's heap would outlive this test.
    code = (
        "import gc, sys; from bot.loop import SWITCH_INTERVAL, tune_for_serving; "
        "before = gc.get_threshold()[0]; tune_for_serving(); "
        "print(gc.get_freeze_count() > 0, gc.get_threshold()[0] > before, sys.getswitchinterval() == SWITCH_INTERVAL)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]
