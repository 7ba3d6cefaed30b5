"""The global pacer: never more than ``limit`` requests in any ``period``, in the order they came.

A fake clock that only moves when the pacer sleeps makes every release time exact: nothing here
depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.discord.pacing import DISCORD_GLOBAL_LIMIT, GlobalPacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def _release_times(pacer: GlobalPacer, clock: FakeClock, requests: int) -> list[tuple[int, float]]:
    released: list[tuple[int, float]] = []

    async def one(index: int) -> None:
        await pacer.wait()
        released.append((index, clock()))

    await asyncio.gather(*(one(i) for i in range(requests)))
    return released


async def test_the_pacer_never_lets_more_than_the_limit_out_in_any_period() -> None:
    clock = FakeClock()
    pacer = GlobalPacer(5, 1.0, clock=clock, sleep=clock.sleep)

    times = [at for _, at in await _release_times(pacer, clock, 23)]

    assert len(times) == 23
    for start in times:
        assert sum(1 for at in times if start <= at < start + 1.0) <= 5
    # ...and no slower than that: five at once, then five more each second.
    assert times == [100.0 + i // 5 for i in range(23)]


async def test_the_pacer_lets_requests_out_in_the_order_they_came() -> None:
    clock = FakeClock()
    pacer = GlobalPacer(3, 0.5, clock=clock, sleep=clock.sleep)

    order = [index for index, _ in await _release_times(pacer, clock, 10)]

    assert order == list(range(10))


async def test_the_pacer_counts_requests_spread_out_over_time() -> None:
    clock = FakeClock()
    pacer = GlobalPacer(2, 1.0, clock=clock, sleep=clock.sleep)
    await pacer.wait()  # at 100.0
    clock.now = 100.6
    await pacer.wait()  # at 100.6: two in the last second, the limit
    await pacer.wait()  # must wait until the first is a second old

    assert clock() == pytest.approx(101.0)
    clock.now = 102.5  # a quiet spell: the window is empty again
    await pacer.wait()
    assert clock() == 102.5


def test_the_adapter_default_is_discords_global_limit() -> None:
    pacer = GlobalPacer()
    assert (pacer.limit, pacer.period) == (DISCORD_GLOBAL_LIMIT, 1.0)


@pytest.mark.parametrize(("limit", "period"), [(0, 1.0), (5, 0.0), (5, -1.0)])
def test_the_pacer_refuses_a_limit_it_could_not_keep(limit: int, period: float) -> None:
    with pytest.raises(ValueError):
        GlobalPacer(limit, period)
