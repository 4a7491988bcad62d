"""The push worker's pacing: the gap it keeps between its runs, and its wait for a quiet
moment of its process's requests.

Runs (``RunPacer``). A booking is several commits in quick succession, each waking the worker.
In a threaded server the worker shares its process, and the GIL, with the requests: while
changes keep coming, the worker waits after catching up until its thread has spent at most
``WORKER_SHARE`` of its time computing (CPU time since it last caught up, Odoo's scheduling
included), at least ``RUN_GAP`` and at most ``MAX_GAP``. The commits that come meanwhile are
pushed together, after the requests instead of beside them; in a burst the same run waits and
pushes them (for at most ``BURST_RUN`` seconds), since Odoo's scheduling of a run costs more
than the push of one class. ``MAX_GAP`` stays under a second: a change made a second or more
after the last push goes out as soon as the server's requests leave a quiet moment (below: at
once on an idle server, within ``MAX_YIELD`` seconds on one that never pauses), whatever came
before.

Requests (``RequestActivity``).

In a threaded Odoo server the cron thread shares its process, and the GIL, with the threads
that serve requests: a push computed while a booking is being served makes that booking wait
for as long as the push computes. So the worker waits, before a round, until no request has run
for ``IDLE`` seconds; a server that never pauses still gets its pushes every ``MAX_YIELD``
seconds, and what came meanwhile goes out in the same round. In a prefork server the cron
worker is a process of its own, serves no request, and never waits here.

Pure: no Odoo. The clock and the sleep are injected, for tests.
"""

import contextlib
import threading
import time

RUN_GAP = 0.25
MAX_GAP = 0.9
WORKER_SHARE = 0.02
BURST_RUN = 5.0
IDLE = 0.2  # a user's click is a few requests in a row: wait until they are all served
MAX_YIELD = 5.0  # seconds a round waits at most for a quiet moment
POLL = 0.02  # while requests run, look again this often


class RequestActivity:
    """The requests being served in this process, and when the last one ended."""

    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._serving = 0
        self._ended = float("-inf")

    @contextlib.contextmanager
    def serving(self):
        """Around the handling of one request."""
        with self._lock:
            self._serving += 1
        try:
            yield
        finally:
            with self._lock:
                self._serving -= 1
                self._ended = self._clock()

    def quiet_for(self):
        """Seconds since the last request ended; 0 while one is being served."""
        with self._lock:
            return 0.0 if self._serving else self._clock() - self._ended

    def wait_quiet(self, idle=IDLE, limit=MAX_YIELD):
        """Wait until no request has run for ``idle`` seconds, or ``limit`` seconds have
        passed. Returns the seconds waited."""
        started = self._clock()
        while True:
            quiet = self.quiet_for()
            waited = self._clock() - started
            if quiet >= idle or waited >= limit:
                return waited
            self._sleep(min(idle - quiet if quiet else POLL, limit - waited))


ACTIVITY = RequestActivity()  # this process's requests (ir.http._dispatch reports them)


class RunPacer:
    """The gaps a process's push runs keep, per ``key`` (a database and a cron thread).

    ``clock``: seconds, monotonic; ``thread_clock``: the calling thread's CPU seconds."""

    def __init__(
        self, clock=time.monotonic, thread_clock=time.thread_time, sleep=time.sleep, activity=ACTIVITY,
        run_gap=RUN_GAP, max_gap=MAX_GAP, idle=IDLE,
    ):
        self.clock = clock
        self.thread_clock = thread_clock
        self._sleep = sleep
        self._activity = activity
        self._run_gap = run_gap
        self._max_gap = max_gap
        self._idle = idle
        self._lock = threading.Lock()
        # key -> (clock and thread_clock when its run last caught up, the gap its next one keeps)
        self._caught_up = {}

    @classmethod
    def unpaced(cls):
        """A pacer that never waits and never sees a burst: every run pushes what is due and
        ends (tests, whose rounds must not wait on the clock)."""
        return cls(run_gap=0.0, max_gap=0.0, idle=0.0)

    def last(self, key):
        """(clock, thread_clock, gap) when ``key``'s run last caught up."""
        with self._lock:
            return self._caught_up.get(key, (float("-inf"), 0.0, self._run_gap))

    def wait_gap(self, key):
        """Before a round: wait what remains of the gap since ``key`` last caught up (a burst
        of commits gathers meanwhile; the server's other threads run), then for a quiet
        moment of the requests. Returns the seconds waited."""
        started = self.clock()
        ended, _cpu, gap = self.last(key)
        wait = gap - (started - ended)
        if wait > 0:
            self._sleep(wait)
        if self._idle:
            self._activity.wait_quiet(idle=self._idle)
        return self.clock() - started

    def caught_up(self, key, cpu_started):
        """Record the gap ``key``'s next round keeps, from the CPU time spent since the
        previous round caught up when it was recent (Odoo's scheduling in between counts),
        else since ``cpu_started`` (this round alone). Returns whether this round followed the
        previous one closely (a burst)."""
        now, cpu = self.clock(), self.thread_clock()
        ended, cpu_then, _gap = self.last(key)
        recent = now - ended < 2 * self._max_gap
        spent = cpu - (cpu_then if recent else cpu_started)
        gap = min(self._max_gap, max(self._run_gap, spent * (1 - WORKER_SHARE) / WORKER_SHARE))
        with self._lock:
            self._caught_up[key] = (now, cpu, gap)
        return recent

    def burst_goes_on(self, key, started, cpu_started):
        """Once caught up (recorded here): whether the run that began at ``started`` (clock)
        waits its gap and pushes what came meanwhile. Only in a burst and for at most
        ``BURST_RUN`` seconds, after which the cron thread goes back to the other scheduled
        actions; an isolated change ends its run at once."""
        in_burst = self.caught_up(key, cpu_started)
        return in_burst and self.clock() - started <= BURST_RUN
