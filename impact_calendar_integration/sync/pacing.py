"""The push worker gives way to the requests of its own process.

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
