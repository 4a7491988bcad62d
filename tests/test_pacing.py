"""The worker's wait for a quiet moment of its process's requests (sync/pacing.py), on a fake
clock: no real sleep, no patched module global."""

import threading

import pytest

from impact_calendar_integration.sync.pacing import IDLE, MAX_YIELD, POLL, RequestActivity


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
