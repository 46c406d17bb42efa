"""The in-flight cap is one cap for every loop and thread, and a cancelled wait leaks no slot."""

from __future__ import annotations

import asyncio
import threading

import pytest

from fathom_events._limits import InFlightCap


class Occupancy:
    """Counts holders at once, from any thread, and remembers the most seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


def free_now(slots: InFlightCap) -> int:
    """How many slots can be taken at once right now (each is given back after)."""
    taken = 0
    while slots.try_take():
        taken += 1
    for _ in range(taken):
        slots.give_back()
    return taken


async def hold(slots: InFlightCap, occupancy: Occupancy, turns: int) -> None:
    if not slots.try_take():
        await slots.take()
    try:
        occupancy.enter()
        for _ in range(turns):
            await asyncio.sleep(0)
        occupancy.leave()
    finally:
        slots.give_back()


def test_one_cap_holds_across_threads_each_running_a_loop() -> None:
    """Callers in three threads' loops never hold more slots than the cap, and all get one."""
    slots = InFlightCap(3)
    occupancy = Occupancy()
    start = threading.Barrier(3)
    done: list[int] = []

    async def crowd() -> None:
        start.wait()
        await asyncio.gather(*(hold(slots, occupancy, turns=5) for _ in range(20)))
        done.append(20)

    threads = [threading.Thread(target=asyncio.run, args=(crowd(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done == [20, 20, 20]
    assert occupancy.most == 3
    assert free_now(slots) == slots.limit


@pytest.mark.parametrize("handed_a_slot", [False, True])
async def test_a_cancelled_waiter_leaves_its_slot_to_the_next(handed_a_slot: bool) -> None:
    """A waiter cancelled before its turn, or once handed a slot but before running, keeps none."""
    slots = InFlightCap(1)
    assert slots.try_take()
    cancelled = asyncio.create_task(slots.take())
    next_in_line = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    if handed_a_slot:
        slots.give_back()  # handed to the first waiter, which has not run yet
        cancelled.cancel()
    else:
        cancelled.cancel()
        await asyncio.sleep(0)
        slots.give_back()
    await asyncio.wait_for(next_in_line, 5)
    assert cancelled.cancelled()
    assert free_now(slots) == 0
    slots.give_back()
    assert free_now(slots) == slots.limit


def test_a_waiter_whose_loop_has_closed_is_skipped() -> None:
    """A slot freed while a waiter's loop is closed goes to nobody there: it stays free."""
    slots = InFlightCap(1)
    assert slots.try_take()
    loop = asyncio.new_event_loop()
    waiting = loop.create_task(slots.take())
    loop.run_until_complete(asyncio.sleep(0))  # the waiter is queued
    loop.close()  # closed by hand, its task still pending
    slots.give_back()
    assert free_now(slots) == slots.limit
    assert slots.try_take()
    # The task can never run again: end its coroutine as collection would, quietly.
    waiting.get_coro().close()
    waiting._log_destroy_pending = False  # type: ignore[attr-defined]
    assert free_now(slots) == 0


def test_a_slot_freed_in_one_thread_wakes_a_waiter_in_another_threads_loop() -> None:
    """A slot given back where no loop runs is handed to the waiter in another thread's loop."""
    slots = InFlightCap(1)
    assert slots.try_take()
    queued = threading.Event()

    async def wait_for_the_slot() -> None:
        waiting = asyncio.ensure_future(slots.take())
        await asyncio.sleep(0)  # the waiter is queued by now
        queued.set()
        await asyncio.wait_for(waiting, 5)

    other = threading.Thread(target=asyncio.run, args=(wait_for_the_slot(),))
    other.start()
    assert queued.wait(5)
    slots.give_back()
    other.join(5)
    assert not other.is_alive()
    assert free_now(slots) == 0  # the other thread holds it now
    slots.give_back()
    assert free_now(slots) == slots.limit
