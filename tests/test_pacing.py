"""The worker's pacing (sync/pacing.py): the gap between its runs and its wait for a quiet moment
of its process's requests, on a fake clock: no real sleep, no patched module global."""

import threading

import pytest

from impact_calendar_integration.sync.pacing import (
    BURST_RUN, IDLE, MAX_GAP, MAX_YIELD, POLL, RUN_GAP, WORKER_SHARE, RequestActivity, RunPacer,
)


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []
        self.on_sleep = None  # called with the clock after each sleep: requests start and end

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def activity(clock):
    return RequestActivity(clock=clock, sleep=clock.sleep)


def test_a_server_that_served_nothing_is_quiet(activity, clock):
    assert activity.wait_quiet() == 0
    assert clock.sleeps == []


def test_waits_until_the_last_request_is_idle_seconds_old(activity, clock):
    with activity.serving():
        clock.now += 0.05
    clock.now += 0.05  # ended 0.05 s ago
    assert activity.wait_quiet() == pytest.approx(IDLE - 0.05)
    assert activity.quiet_for() == pytest.approx(IDLE)


def test_a_request_in_flight_is_waited_for_then_the_idle_time(activity, clock):
    request = activity.serving()
    request.__enter__()
    polls = []

    def end_after_three_polls(fake):
        polls.append(fake.now)
        if len(polls) == 3:
            request.__exit__(None, None, None)

    clock.on_sleep = end_after_three_polls
    waited = activity.wait_quiet()
    assert clock.sleeps[:3] == [POLL] * 3, "polls while the request runs"
    assert waited == pytest.approx(3 * POLL + IDLE), "then the idle time after it ended"


def test_a_server_that_never_pauses_gets_its_push_after_max_yield(activity, clock):
    def a_request_every_poll(fake):
        with activity.serving():
            fake.now += 0.001

    clock.on_sleep = a_request_every_poll
    a_request_every_poll(clock)
    assert activity.wait_quiet() == pytest.approx(MAX_YIELD, abs=IDLE)
    assert clock.now - 100.0 <= MAX_YIELD + IDLE


def test_the_count_survives_a_failing_request(activity, clock):
    with pytest.raises(ValueError), activity.serving():
        raise ValueError("the request failed")
    assert activity.quiet_for() == 0.0  # it ended just now, and is not counted as running
    clock.now += IDLE
    assert activity.wait_quiet() == 0


def test_requests_of_many_threads(activity, clock):
    """Threads enter and leave together: the count ends at zero, whatever the interleaving."""
    start = threading.Barrier(8)

    def serve():
        start.wait()
        for _ in range(200):
            with activity.serving():
                pass

    threads = [threading.Thread(target=serve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clock.now += IDLE
    assert activity.wait_quiet() == 0


# -- the gap between runs ---------------------------------------------------------------------------
KEY = ("db", 1)


class FakeCpu:
    """The cron thread's CPU clock: advanced by the test, as the worker computes."""

    def __init__(self):
        self.now = 7.0

    def __call__(self):
        return self.now


@pytest.fixture
def cpu():
    return FakeCpu()


@pytest.fixture
def pacer(clock, cpu, activity):
    return RunPacer(clock=clock, thread_clock=cpu, sleep=clock.sleep, activity=activity)


def test_a_first_run_does_not_wait(pacer, clock):
    assert pacer.wait_gap(KEY) == 0
    assert clock.sleeps == []


def test_the_next_run_waits_what_remains_of_the_gap(pacer, clock, cpu):
    cpu_started = cpu.now
    cpu.now += 0.001  # a cheap round: the gap stays the shortest
    assert pacer.caught_up(KEY, cpu_started) is False, "the first round is no burst"
    clock.now += 0.1
    assert pacer.wait_gap(KEY) == pytest.approx(RUN_GAP - 0.1)
    assert clock.sleeps == [pytest.approx(RUN_GAP - 0.1)]


def test_the_gap_keeps_the_worker_to_its_share_of_the_cpu(pacer, clock, cpu):
    cpu_started = cpu.now
    cpu.now += 0.01
    pacer.caught_up(KEY, cpu_started)
    assert pacer.last(KEY)[2] == pytest.approx(0.01 * (1 - WORKER_SHARE) / WORKER_SHARE)
    cpu.now += 1.0  # an expensive round
    clock.now += 0.5
    assert pacer.caught_up(KEY, cpu.now - 1.0) is True, "it followed the previous one closely"
    assert pacer.last(KEY)[2] == MAX_GAP, "never more than MAX_GAP"


def test_a_burst_counts_the_cpu_since_the_previous_round(pacer, clock, cpu):
    pacer.caught_up(KEY, cpu.now)
    cpu.now += 0.004  # Odoo's scheduling between the rounds
    cpu_started = cpu.now
    cpu.now += 0.004
    clock.now += 2 * MAX_GAP - 0.01
    assert pacer.caught_up(KEY, cpu_started) is True
    assert pacer.last(KEY)[2] == pytest.approx(0.008 * (1 - WORKER_SHARE) / WORKER_SHARE)


def test_a_round_long_after_the_previous_one_counts_only_itself(pacer, clock, cpu):
    pacer.caught_up(KEY, cpu.now)
    cpu.now += 5.0  # other scheduled actions, long ago
    clock.now += 2 * MAX_GAP + 0.01
    cpu_started = cpu.now
    cpu.now += 0.001
    assert pacer.caught_up(KEY, cpu_started) is False
    assert pacer.last(KEY)[2] == RUN_GAP


def test_a_burst_goes_on_for_at_most_burst_run_seconds(pacer, clock, cpu):
    started = clock.now
    assert pacer.burst_goes_on(KEY, started, cpu.now) is False, "an isolated change ends its run"
    clock.now += 0.3
    assert pacer.burst_goes_on(KEY, started, cpu.now) is True
    clock.now += BURST_RUN
    assert pacer.burst_goes_on(KEY, started, cpu.now) is False, "back to the other scheduled actions"


def test_keys_keep_their_own_gaps(pacer, clock, cpu):
    pacer.caught_up(KEY, cpu.now - 1.0)
    assert pacer.wait_gap(("db", 2)) == 0
    assert pacer.wait_gap(("other db", 1)) == 0
    assert pacer.wait_gap(KEY) == pytest.approx(MAX_GAP)


def test_after_its_gap_a_run_waits_for_a_quiet_moment(pacer, clock, activity):
    pacer.caught_up(KEY, pacer.thread_clock())

    def a_request_during_the_gap(fake):
        if len(fake.sleeps) == 1:
            with activity.serving():
                fake.now += 0.05

    clock.on_sleep = a_request_during_the_gap
    assert pacer.wait_gap(KEY) == pytest.approx(RUN_GAP + 0.05 + IDLE)
    assert clock.sleeps[0] == pytest.approx(RUN_GAP)


def test_an_unpaced_pacer_never_waits_nor_sees_a_burst():
    pacer = RunPacer.unpaced()
    assert pacer.burst_goes_on(KEY, pacer.clock(), pacer.thread_clock()) is False
    assert pacer.burst_goes_on(KEY, pacer.clock(), pacer.thread_clock()) is False
    assert pacer.last(KEY)[2] == 0
    assert pacer.wait_gap(KEY) < RUN_GAP
