"""Limits on what a provider's answer may cost us: its size, and the time it takes to arrive.

A per-read timeout alone does not bound a request: a server that sends one byte every 19 s never
trips a 20 s timeout, and one that sends gigabytes fills the worker's memory. ``read_bounded``
reads a body in chunks, refusing it past ``max_bytes`` or past a total ``deadline``; the HTTP
layers of the providers (httplib2 for Google, requests for Microsoft Graph) read every answer
through it. No dependency beyond the standard library.
"""

import time

MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # no calendar answer of ours comes near this
TOTAL_DEADLINE = 60.0  # seconds for a whole answer, whatever the per-read timeout
CHUNK = 64 * 1024


class ResponseLimitError(Exception):
    """An answer broke a limit; nothing of it can be trusted (a transient failure)."""


class ResponseTooLarge(ResponseLimitError):
    def __init__(self, max_bytes):
        super().__init__(f"the answer is larger than {max_bytes} bytes")


class DeadlineExceeded(ResponseLimitError):
    def __init__(self, seconds=None):
        super().__init__("the answer took too long" + (f" (over {seconds:g} s)" if seconds else ""))


def deadline_after(seconds):
    """The ``time.monotonic()`` value ``seconds`` from now (what ``read_bounded`` expects)."""
    return time.monotonic() + seconds


def check_length(headers, max_bytes):
    """Refuse an answer whose announced Content-Length is over the cap, before reading it."""
    length = (headers or {}).get("content-length")
    try:
        announced = int(length) if length is not None else None
    except (TypeError, ValueError):
        return  # unreadable: the read itself counts the bytes
    if announced is not None and announced > max_bytes:
        raise ResponseTooLarge(max_bytes)


def read_bounded(response, max_bytes=MAX_RESPONSE_BYTES, deadline=None, sock=None):
    """The whole body of ``response`` (a file-like answer: ``http.client.HTTPResponse``, a
    urllib3 response, a ``requests.Response`` through its ``raw``), as bytes.

    ``deadline``: a ``time.monotonic()`` value (``deadline_after``) after which reading stops.
    ``sock``: the connection's socket, when known: each read then waits at most until the
    deadline; without it, a read may end up to one per-read timeout after the deadline.
    Raises ``ResponseTooLarge`` or ``DeadlineExceeded``; network errors pass through.
    """
    stream = getattr(response, "raw", None) or response
    if getattr(stream, "decode_content", None) is not None:
        # urllib3 (under requests): count and return the decoded body, as requests would.
        def read(amount):
            return stream.read(amount, decode_content=True)
    else:
        # read, not read1: http.client closes a response (so that its connection can carry
        # the next request) only when read() reaches the end of the body.
        read = stream.read
    timeout = sock.gettimeout() if sock is not None else None
    chunks, size = [], 0
    try:
        while True:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded()
                if sock is not None:
                    sock.settimeout(remaining if timeout is None else min(timeout, remaining))
            try:
                chunk = read(min(CHUNK, max_bytes + 1 - size))
            except Exception as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise DeadlineExceeded() from exc  # the read was cut by our own timeout
                raise
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(max_bytes)
            chunks.append(chunk)
    finally:
        if sock is not None:
            try:
                sock.settimeout(timeout)
            except OSError:
                pass  # the socket was closed meanwhile
