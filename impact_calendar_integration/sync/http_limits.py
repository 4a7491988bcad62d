"""Bounds on what one HTTP request may cost: a total deadline and a cap on the body read.

The per-read timeout of ``requests`` restarts at every byte, so a server that drips one byte
every 19 s holds a worker for as long as it likes. ``Deadline`` is a watchdog: sockets opened or
reused while it is active (``watch``) are shut down when it expires, which ends whatever read is
blocked on them (status line, headers, TLS handshake or body). ``read_bounded`` reads a
streamed body up to a size cap and stops at the deadline.

    with Deadline(60) as deadline:
        response = session.send(prepared, stream=True, timeout=20)
        body = read_bounded(response, 1_000_000, deadline)
"""

import contextlib
import os
import socket
import threading

#: bytes read per step of a streamed body
CHUNK = 16384

_active = threading.local()


class LimitExceeded(Exception):
    """A response broke a bound; the connection is closed."""


class ResponseTooLarge(LimitExceeded):
    """The body is larger than the cap."""


class DeadlineExceeded(LimitExceeded):
    """The request took longer than its total deadline."""


class Deadline:
    """A total deadline for the requests made in its ``with`` block, in this thread."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.expired = False
        self._watched = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._previous = getattr(_active, "deadline", None)
        _active.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()
        _active.deadline = self._previous
        with self._lock:
            watched, self._watched = self._watched, []
        for sock in watched:
            sock.close()  # our duplicate only: the connection itself stays open for reuse

    def watch(self, sock):
        """Shut ``sock`` down when the deadline expires. A duplicate of its descriptor is kept:
        it outlives the TLS wrapping (which detaches the original socket object)."""
        duplicate = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        with self._lock:
            self._watched.append(duplicate)
            expired = self.expired
        if expired:
            _shutdown(duplicate)

    def _expire(self):
        with self._lock:
            self.expired = True
            watched = list(self._watched)
        for sock in watched:
            _shutdown(sock)


def _shutdown(sock):
    # OSError: already closed by its owner, nothing left to stop.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def watch(sock):
    """Put ``sock`` under the active deadline of this thread, if any (called by connections)."""
    deadline = getattr(_active, "deadline", None)
    if deadline is not None and sock is not None and sock.fileno() >= 0:
        deadline.watch(sock)


def read_bounded(response, max_bytes, deadline=None):
    """The body of a streamed ``requests`` response (``stream=True``), read at most up to
    ``max_bytes`` and before ``deadline`` expires; it is also kept as ``response.content``.
    Raises ResponseTooLarge or DeadlineExceeded (the response is closed then)."""
    declared = response.headers.get("Content-Length", "")
    chunks, size = [], 0
    try:
        if declared.strip().isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(f"{declared} bytes announced, at most {max_bytes} read")
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"more than {max_bytes} bytes")
            if deadline is not None and deadline.expired:
                raise DeadlineExceeded(f"no complete answer within {deadline.seconds} s")
            chunks.append(chunk)
        if deadline is not None and deadline.expired:
            # Cut short by the watchdog, the answer may look complete (headers end at EOF).
            raise DeadlineExceeded(f"no complete answer within {deadline.seconds} s")
    except LimitExceeded:
        response.close()
        raise
    except Exception:
        response.close()
        if deadline is not None and deadline.expired:
            raise DeadlineExceeded(f"no complete answer within {deadline.seconds} s") from None
        raise
    body = b"".join(chunks)
    response._content = body  # pylint: disable=protected-access
    response._content_consumed = True  # pylint: disable=protected-access
    return body

