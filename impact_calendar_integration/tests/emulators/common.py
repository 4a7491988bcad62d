"""Threaded loopback HTTP(S) server with a request log and fault injection."""

import json
import logging
import re
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_logger = logging.getLogger(__name__)


@dataclass
class Fault:
    """A fault served instead of the normal answer to requests whose path matches.

    status: HTTP status to answer with (with ``body`` as JSON and ``headers``);
    delay: seconds to sleep before answering normally (or before the fault);
    drop: close the connection without answering;
    after_handling: the request is applied first, then the drop, delay or status replaces its
    answer (an answer lost after the change was made);
    times: how many matching requests it hits (None: until cleared);
    answer: ``answer(req, real)`` returns the Response to send instead (``real()`` performs the
    request and returns the emulator's own answer, to rewrite it): malformed or truncated
    answers, proxy pages. It also hits the parts of a Google batch;
    skip: how many matching requests pass untouched (and uncounted) before it hits;
    before: ``before()`` runs when it hits, then the request is served as usual unless another
    option of this fault answers it (the consent dies mid-batch, say).
    """

    path: str
    method: str = None
    status: int = None
    body: object = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    times: int = 1
    after_handling: bool = False  # drop/delay/status only after the real handler ran: the answer is lost
    answer: object = None
    skip: int = 0
    before: object = None

    @property
    def answers_itself(self):
        """Whether it replaces or delays the answer (else it only runs ``before``)."""
        return bool(self.status or self.drop or self.delay or self.answer)

    def matches(self, method, path):
        if self.method and self.method.upper() != method:
            return False
        return re.search(self.path, path) is not None


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    status: int = None


class Request:
    """What a route handler sees."""

    def __init__(self, handler, method, body):
        self.handler = handler
        self.method = method
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = handler.headers
        self.body = body

    def json(self):
        return json.loads(self.body or b"{}")

    def form(self):
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class Response:
    def __init__(self, status=200, body=None, headers=None, raw=None, content_type="application/json"):
        self.status = status
        self.headers = dict(headers or {})
        if raw is not None:
            self.raw = raw if isinstance(raw, bytes) else raw.encode()
        elif body is None:
            self.raw = b""
        else:
            self.raw = json.dumps(body).encode()
        if self.raw and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = content_type


class _QuietServer(ThreadingHTTPServer):
    """A client that gives up on an answer (refused as too large, too slow) closes its
    connection: not worth a traceback on stderr."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ssl.SSLError)):
            _logger.debug("client %s closed the connection", client_address)
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Base of the emulators: subclasses define ``routes``: [(method, regex, callable)]."""

    routes = ()

    def __init__(self, tls_context=None, host="127.0.0.1"):
        self.host = host
        self.tls_context = tls_context
        self.faults = []
        self.log = []
        self.lock = threading.RLock()
        self.latency = 0.0  # simulated round trip added to every request
        self._httpd = None
        self._thread = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Large answers ($batch) otherwise wait for the client's delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _serve(self):
                server._dispatch(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._httpd = _QuietServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        if self.tls_context:
            self._httpd.socket = self.tls_context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def base_url(self):
        scheme = "https" if self.tls_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    # -- test controls -----------------------------------------------------------
    def inject(self, path, **kwargs):
        fault = Fault(path=path, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self):
        with self.lock:
            self.faults.clear()

    def requests(self, path_regex=None, method=None):
        with self.lock:
            return [
                r
                for r in self.log
                if (path_regex is None or re.search(path_regex, r.path))
                and (method is None or r.method == method)
            ]

    def _take_fault(self, method, path, inner=False, answers=True):
        """The first fault matching the request that answers it, counted as used; a matching
        fault that only runs ``before`` runs it here and lets the request through.

        ``inner``: the request is one part of a batch; only status, ``answer`` and ``before``
        faults apply there (a drop, a delay or an after-handling fault concerns the whole HTTP
        exchange). ``answers``: whether ``answer`` faults apply (not where no emulator answer
        exists).
        """
        with self.lock:
            for fault in list(self.faults):
                if fault.answer and not answers:
                    continue
                if inner and fault.answers_itself and not fault.answer and (not fault.status or fault.drop or fault.after_handling):
                    continue
                if not fault.matches(method, path):
                    continue
                if fault.skip:
                    fault.skip -= 1
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                if fault.before:
                    fault.before()
                if fault.answers_itself:
                    return fault
        return None

    # -- dispatch ------------------------------------------------------------------
    def _dispatch(self, handler):
        method = handler.command
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        req = Request(handler, method, body)
        entry = LoggedRequest(method, req.path, req.query, dict(handler.headers), body)
        with self.lock:
            self.log.append(entry)
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(method, req.path)
        if fault and fault.answer:
            resp = fault.answer(req, lambda: self.handle(req))
            entry.status = resp.status
            self._write(handler, resp)
            return
        if fault and not fault.after_handling:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                entry.status = 0
                self._drop(handler)
                return
            if fault.status:
                resp = Response(fault.status, fault.body, fault.headers)
                entry.status = resp.status
                self._write(handler, resp)
                return
        resp = self.handle(req)
        entry.status = resp.status
        if fault and fault.after_handling:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                entry.status = 0
                self._drop(handler)
                return
            if fault.status:  # applied, but the answer the client gets is this error
                resp = Response(fault.status, fault.body, fault.headers)
                entry.status = resp.status
        self._write(handler, resp)

    def handle(self, req):
        for method, pattern, func in self.routes:
            if method != req.method:
                continue
            match = re.fullmatch(pattern, req.path)
            if match:
                return func(self, req, **match.groupdict())
        return self.not_found(req)

    def not_found(self, req):
        return Response(404, {"error": {"code": 404, "message": f"Not Found: {req.method} {req.path}"}})

    @staticmethod
    def _write(handler, resp):
        try:
            handler.send_response(resp.status)
            for name, value in resp.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(resp.raw)))
            # Headers and body in one write: two small writes meet Nagle + delayed ACK (~40 ms).
            handler._headers_buffer.append(b"\r\n")
            handler.wfile.write(b"".join(handler._headers_buffer) + resp.raw)
            handler._headers_buffer = []
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as exc:
            _logger.debug("client went away before the answer: %s", exc)

    @staticmethod
    def _drop(handler):
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            _logger.debug("dropped connection was already closed: %s", exc)
