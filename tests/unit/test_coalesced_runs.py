"""CoalescedRuns (services/webhooks.py): the callers that arrive while a run is going share the next
run, which starts after they all arrived; keys apart; failures reach the callers they were for."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from billing_app.services.webhooks import CoalescedRuns

WAIT = 10


class Work:
    """Work whose runs are numbered; a run waits for `release` while `hold` is set."""

    def __init__(self) -> None:
        self.runs = 0
        self.hold = threading.Event()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail_run: int | None = None

    def __call__(self) -> int:
        self.runs += 1
        number = self.runs
        self.entered.set()
        if self.hold.is_set():
            assert self.release.wait(WAIT)
        if number == self.fail_run:
            raise RuntimeError(f"run {number} failed")
        return number


def waiting_callers(coalesced: CoalescedRuns, key: str) -> int:
    with coalesced._changed:
        runs = coalesced._keys.get(key)
        return 0 if runs is None else runs.callers


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def burst_during_a_run(coalesced: CoalescedRuns, work: Work, late: int) -> tuple[Future, list]:
    """A first caller whose run is held, then `late` callers arriving during it; the run is let go
    once they all wait."""
    pool = ThreadPoolExecutor(max_workers=late + 1)
    work.hold.set()
    first = pool.submit(coalesced.run, "acct", work)
    assert work.entered.wait(WAIT)
    later = [pool.submit(coalesced.run, "acct", work) for _ in range(late)]
    until(lambda: waiting_callers(coalesced, "acct") == late + 1, "the late callers wait")
    work.hold.clear()
    work.release.set()
    pool.shutdown(wait=True)
    return first, later


def test_callers_arriving_during_a_run_share_the_next_run():
    coalesced, work = CoalescedRuns(), Work()
    first, later = burst_during_a_run(coalesced, work, late=12)
    assert first.result() == 1
    assert [f.result() for f in later] == [2] * 12  # a run that began after they arrived
    assert work.runs == 2
    assert coalesced._keys == {}  # nothing kept once every caller left


def test_a_caller_alone_runs_at_once_each_time():
    coalesced, work = CoalescedRuns(), Work()
    assert [coalesced.run("acct", work) for _ in range(3)] == [1, 2, 3]


def test_keys_do_not_wait_for_each_other():
    coalesced, held, other = CoalescedRuns(), Work(), Work()
    held.hold.set()
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(coalesced.run, "a", held)
        assert held.entered.wait(WAIT)
        assert coalesced.run("b", other) == 1  # while "a" is still running
        held.release.set()
        assert first.result() == 1


def test_a_failed_run_fails_the_callers_it_was_for_only():
    coalesced, work = CoalescedRuns(), Work()
    work.fail_run = 2
    first, later = burst_during_a_run(coalesced, work, late=3)
    assert first.result() == 1
    for future in later:
        with pytest.raises(RuntimeError, match="run 2 failed"):
            future.result()
    assert coalesced.run("acct", work) == 3  # the next caller runs again
