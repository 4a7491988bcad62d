"""A ``requests`` session for URLs that users and remote servers choose (a server a
user types in): every request
is checked by the guard (``netguard``) before any socket is opened, goes to the address the
guard validated (no second DNS lookup, so no DNS rebinding) while TLS still checks the
certificate against the host name, has a total deadline and a capped body (``http_limits``),
and never follows a redirect by itself: ``request`` follows a few, checking each hop.

Environment proxies are not used: the request must reach the address that was checked.
A session serves one thread at a time (the pins are per session).
"""

from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

from . import http_limits, netguard

MAX_BYTES = 1_000_000  # such an answer (discovery, one event) is a few kilobytes
DEADLINE = 60  # seconds for a whole request, whatever the per-read timeout
MAX_REDIRECTS = 3
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class _Watched:
    """A connection whose socket is under the active deadline (``http_limits.watch``)."""

    def _new_conn(self):
        sock = super()._new_conn()
        http_limits.watch(sock)
        return sock

    def request(self, *args, **kwargs):  # pylint: disable=signature-differs
        http_limits.watch(self.sock)  # a kept-alive connection: under this request's deadline
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


#: urllib3 pools whose connections are under the active ``http_limits.Deadline``: an adapter's
#: ``poolmanager.pool_classes_by_scheme`` (this module's, and any provider session's).
WATCHED_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


def _host_header(host, port, scheme):
    name = f"[{host}]" if ":" in host else host
    return name if port == netguard.DEFAULT_PORTS[scheme] else f"{name}:{port}"


class PinnedAdapter(HTTPAdapter):
    """Connects to the address pinned for a URL's (scheme, host, port), and to nothing else;
    the Host header, TLS SNI and the certificate check keep the host name."""

    def __init__(self):
        self._pins = {}
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        result = super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(WATCHED_POOLS)
        return result

    def pin(self, target):
        self._pins[(target.scheme, target.host, target.port)] = target.address

    def _key(self, url):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").rstrip("."), parts.port or netguard.DEFAULT_PORTS.get(scheme)

    def _pool(self, url):
        scheme, host, port = key = self._key(url)
        address = self._pins.get(key)
        if address is None:
            raise netguard.HostNotAllowed(netguard.MALFORMED, url)  # never an unchecked address
        tls = {"server_hostname": host, "assert_hostname": host} if scheme == "https" else None
        return self.poolmanager.connection_from_host(address, port=port, scheme=scheme, pool_kwargs=tls)

    def get_connection(self, url, proxies=None):
        return self._pool(url)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        return self._pool(request.url)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        scheme, host, port = self._key(request.url)
        request.headers["Host"] = _host_header(host, port, scheme)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={})


class GuardedSession(requests.Session):
    """A session whose every request is checked, pinned, bounded, and not redirected."""

    def __init__(self, guard=None, max_bytes=MAX_BYTES, deadline=DEADLINE):
        super().__init__()
        self.guard = guard or netguard.Guard()
        self.max_bytes = max_bytes
        self.deadline = deadline
        # The cap counts what we read: no compressed answer that inflates beyond it in one step.
        self.headers["Accept-Encoding"] = "identity"
        self._adapter = PinnedAdapter()
        self.mount("http://", self._adapter)
        self.mount("https://", self._adapter)

    def send(self, request, **kwargs):
        """Check, pin and send one request; its body is read (bounded) before returning.
        Raises HostNotAllowed before any socket is opened for a refused URL."""
        self._adapter.pin(self.guard.check(request.url))
        return send_bounded(
            lambda: self._adapter.send(
                request, stream=True, timeout=kwargs.get("timeout"),
                verify=kwargs.get("verify", True), cert=kwargs.get("cert"),
            ),
            self.max_bytes, self.deadline,
        )


def send_bounded(send, max_bytes, seconds):
    """``send()`` (a streamed requests send) under a ``seconds`` deadline, its body read up to
    ``max_bytes`` before returning; a request cut by the deadline raises DeadlineExceeded."""
    with http_limits.Deadline(seconds) as deadline:
        try:
            response = send()
        except requests.RequestException:
            if deadline.expired:
                raise http_limits.DeadlineExceeded(f"no answer within {deadline.seconds} s") from None
            raise
        http_limits.read_bounded(response, max_bytes, deadline)
    return response


def request(session, method, url, max_redirects=MAX_REDIRECTS, **kwargs):
    """``session.request`` following at most ``max_redirects`` redirects by hand, the method and
    body kept (WebDAV), each hop checked by the session; https never leads to plain http.
    The final response's ``url`` is the address that answered."""
    for _hop in range(max_redirects + 1):
        response = session.request(method, url, allow_redirects=False, **kwargs)
        location = response.headers.get("Location")
        if response.status_code not in REDIRECT_STATUSES or not location:
            return response
        target = urljoin(url, location.strip())
        if urlsplit(url).scheme.lower() == "https" and urlsplit(target).scheme.lower() != "https":
            raise netguard.HostNotAllowed(netguard.SCHEME, target)
        url = target
    raise requests.TooManyRedirects(f"more than {max_redirects} redirects")
