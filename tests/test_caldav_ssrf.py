"""Server-side requests through the CalDAV server URL (issue 21, finding 2): every URL form that
points to a private, local or link-local address is refused before any socket is opened, every
redirect hop and every href the server sends is checked again, the connection goes to the
address that was checked, and an answer is bounded in size and time.

No test sends traffic anywhere but to its own loopback servers: names resolve through a stub
resolver, and ``sockets`` fails (and records) any connect or DNS lookup to anything else.
"""

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from impact_calendar_integration.sync import guarded_http, http_limits, netguard
from impact_calendar_integration.sync.outcomes import ConnectError, Kind
from impact_calendar_integration.sync.providers import caldav
from impact_calendar_integration.sync.providers.base import CREATE, Operation
from impact_calendar_integration.sync.tokens import TokenSet

PUBLIC = caldav.CaldavConfig(timeout=5)
PRIVATE_OK = caldav.CaldavConfig(timeout=5, allow_private_hosts=True)
STUB_DNS = {
    "public.test": ["93.184.216.34"],
    "intranet.test": ["10.0.0.5"],
    "mixed.test": ["93.184.216.34", "10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "dav.test": ["127.0.0.1"],
    "localhost": ["127.0.0.1"],
}
PRINCIPAL = """<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/</d:href><d:propstat>
<d:prop><d:current-user-principal><d:href>{href}</d:href></d:current-user-principal></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"""
HOME = """<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
<d:response><d:href>/p/</d:href><d:propstat><d:prop><c:calendar-home-set><d:href>{href}</d:href>
</c:calendar-home-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"""


def stub_resolver(host, port):
    return list(STUB_DNS.get(host, []))


@pytest.fixture
def sockets(monkeypatch):
    """Every connect and DNS lookup made, and ``allowed``: the loopback (host, port) pairs of
    this test's own servers. Anything else is recorded and fails before leaving the process."""
    record = {"connects": [], "lookups": [], "refused": [], "allowed": set()}
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        record["connects"].append(address[:2])
        if (address[0], address[1]) not in record["allowed"]:
            record["refused"].append(address[:2])
            raise OSError("test: connection to a host that is not ours")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        record["lookups"].append(host)
        try:
            literal = netguard.literal_address(str(host).strip("[]"))
        except netguard.HostNotAllowed:
            literal = None
        if literal is None:
            raise socket.gaierror("test: no DNS, names resolve through the stub")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return record


class Server:
    """A loopback HTTP(S) server of the test: ``routes[(method, path)] = handler(request)``
    writing the answer itself (a drip, a huge body); it counts the requests it answered."""

    def __init__(self, routes, tls=None):
        self.routes, self.seen, self.bytes_sent = routes, [], 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.seen.append((self.command, self.path, self.headers.get("Host")))
                route = server.routes.get((self.command, self.path)) or server.routes.get((self.command, "*"))
                try:
                    if route:
                        route(self)
                    else:
                        answer(self, 404, b"")
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    self.close_connection = True

            do_PROPFIND = do_MKCALENDAR = do_PUT = do_GET = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(handler, status, body=b"", headers=()):
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def multistatus(template, href):
    return lambda handler: answer(handler, 207, template.format(href=href).encode(), [("Content-Type", "application/xml")])


def redirect(location):
    return lambda handler: answer(handler, 301, b"", [("Location", location)])


def session(config):
    return caldav.new_session(config, resolver=stub_resolver)


# -- every URL form, refused before any socket -----------------------------------------------
LOCAL_FORMS = [
    "https://127.0.0.1/", "https://127.0.0.1./", "https://2130706433/", "https://0177.0.0.1/",
    "https://0x7f.1/", "https://0x7f000001/", "https://127.1/", "https://017700000001/",
    "https://[::1]/", "https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[::127.0.0.1]/",
    "https://localhost/", "https://LOCALHOST./dav/", "https://calendar.localhost/",
    "https://10.0.0.1/", "https://172.16.0.1/", "https://192.168.1.1/", "https://100.64.0.1/",
    "https://[fc00::1]/", "https://intranet.test/", "https://mixed.test/",
]
ALWAYS_REFUSED = [
    "https://169.254.169.254/latest/meta-data/", "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a9fe:a9fe::]/", "https://[fe80::1%25eth0]/",
    "https://metadata.test/", "https://0.0.0.0/", "https://0/", "https://[::]/", "https://224.0.0.1/",
    "https://255.255.255.255/", "https://240.0.0.1/",
]


@pytest.mark.parametrize("url", LOCAL_FORMS + ALWAYS_REFUSED)
def test_private_and_local_forms_refused_before_any_socket(sockets, url):
    with pytest.raises(ConnectError) as caught:
        caldav.check_credentials(PUBLIC, url, "ann", "secret", session=session(PUBLIC))
    assert str(caught.value) == caldav.NOT_ALLOWED
    assert sockets["connects"] == [] and sockets["lookups"] == []


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_link_local_and_unroutable_refused_even_when_private_hosts_are_allowed(sockets, url):
    with pytest.raises(ConnectError, match="not allowed"):
        caldav.check_credentials(PRIVATE_OK, url, "ann", "secret", session=session(PRIVATE_OK))
    assert sockets["connects"] == []


@pytest.mark.parametrize("url", ["http://public.test/", "http://93.184.216.34/", "http://127.0.0.1:8/", "ftp://public.test/"])
def test_plain_http_only_to_private_hosts_and_only_when_allowed(sockets, url):
    with pytest.raises(ConnectError) as caught:
        caldav.check_credentials(PUBLIC, url, "ann", "secret", session=session(PUBLIC))
    assert str(caught.value) in (caldav.HTTPS_ONLY, caldav.NOT_ALLOWED)
    if "public" in url or "93." in url:
        with pytest.raises(ConnectError, match="https://"):
            caldav.check_credentials(PRIVATE_OK, url, "ann", "secret", session=session(PRIVATE_OK))
    assert sockets["connects"] == []


@pytest.mark.parametrize("url", ["https://1.2.3.4.5/", "https://08.0.0.1/", "https:///dav", "https://[::g]/"])
def test_malformed_numeric_hosts_are_not_sent_to_dns(sockets, url):
    with pytest.raises(ConnectError):
        caldav.check_credentials(PUBLIC, url, "ann", "secret", session=session(PUBLIC))
    assert sockets["connects"] == [] and sockets["lookups"] == []


def test_inet_aton_notations():
    assert str(netguard.parse_ipv4("0x7f.1")) == "127.0.0.1"
    assert str(netguard.parse_ipv4("0177.0.0.1")) == "127.0.0.1"
    assert str(netguard.parse_ipv4("2130706433")) == "127.0.0.1"
    assert str(netguard.parse_ipv4("10.1")) == "10.0.0.1"
    assert str(netguard.parse_ipv4("192.168.257")) == "192.168.1.1"
    assert netguard.parse_ipv4("caldav.icloud.com") is None
    assert netguard.Guard(resolver=stub_resolver).check("https://public.test:8443/dav/").address == "93.184.216.34"


# -- what the server sends: redirects and hrefs ----------------------------------------------
@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/", "https://metadata.test/", "https://[::ffff:a9fe:a9fe]/",
])
def test_redirect_to_a_refused_address_is_not_followed(sockets, location):
    with Server({("PROPFIND", "/"): redirect(location)}) as server:
        sockets["allowed"].add(("127.0.0.1", server.port))
        with pytest.raises(ConnectError, match="not allowed|https://"):
            caldav.check_credentials(PRIVATE_OK, f"http://dav.test:{server.port}/", "ann", "secret", session=session(PRIVATE_OK))
    assert sockets["refused"] == [] and len(server.seen) == 1


@pytest.mark.parametrize("stage", ["principal", "home"])
def test_hrefs_from_the_server_are_checked(sockets, stage):
    target = "http://169.254.169.254/p/"
    with Server({}) as server:
        base = f"http://dav.test:{server.port}"
        server.routes[("PROPFIND", "/")] = multistatus(PRINCIPAL, target if stage == "principal" else "/p/")
        server.routes[("PROPFIND", "/p/")] = multistatus(HOME, target)
        sockets["allowed"].add(("127.0.0.1", server.port))
        with pytest.raises(ConnectError, match="not allowed"):
            caldav.check_credentials(PRIVATE_OK, base + "/", "ann", "secret", session=session(PRIVATE_OK))
    assert sockets["refused"] == []


def test_at_most_three_redirects_and_the_name_is_kept(sockets):
    with Server({}) as server:
        base = f"http://dav.test:{server.port}"
        for hop in range(6):
            server.routes[("PROPFIND", f"/{hop}")] = redirect(f"{base}/{hop + 1}")
        sockets["allowed"].add(("127.0.0.1", server.port))
        with pytest.raises(ConnectError) as caught:
            caldav.check_credentials(PRIVATE_OK, base + "/0", "ann", "secret", session=session(PRIVATE_OK))
    assert str(caught.value) == caldav.NOT_CALDAV
    assert [path for _method, path, _host in server.seen] == ["/0", "/1", "/2", "/3"]
    # the connection went to the address the stub gave (no DNS lookup of dav.test by anyone
    # else), and the server saw the name
    assert {host for _m, _p, host in server.seen} == {f"dav.test:{server.port}"}
    assert "dav.test" not in sockets["lookups"]


@pytest.fixture(scope="module")
def tls():
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("dav.test").configure_cert(context)
    with authority.cert_pem.tempfile() as bundle:
        yield context, bundle


def test_tls_pinned_to_the_checked_address_keeps_the_certificate_check_on_the_name(sockets, tls, monkeypatch):
    context, bundle = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)
    with Server({}) as plain, Server({}, tls=context) as secure:
        secure.routes[("PROPFIND", "/")] = multistatus(PRINCIPAL, "/p/")
        secure.routes[("PROPFIND", "/p/")] = multistatus(HOME, "/home/")
        secure.routes[("PROPFIND", "/old")] = redirect(f"http://dav.test:{plain.port}/")
        sockets["allowed"].update({("127.0.0.1", plain.port), ("127.0.0.1", secure.port)})
        url = f"https://dav.test:{secure.port}/"
        tokens, _label = caldav.check_credentials(PRIVATE_OK, url, "ann", "secret", session=session(PRIVATE_OK))
        assert tokens.calendar_home == f"https://dav.test:{secure.port}/home/"
        with pytest.raises(ConnectError, match="https://"):  # https never leads to plain http
            caldav.check_credentials(PRIVATE_OK, url + "old", "ann", "secret", session=session(PRIVATE_OK))
        assert plain.seen == []
        # the same address under a name the certificate does not hold: refused by TLS
        STUB_DNS["other.test"] = ["127.0.0.1"]
        try:
            with pytest.raises(ConnectError):
                caldav.check_credentials(PRIVATE_OK, f"https://other.test:{secure.port}/", "ann", "secret", session=session(PRIVATE_OK))
        finally:
            del STUB_DNS["other.test"]
    assert sockets["refused"] == []


# -- pushes ------------------------------------------------------------------------------------
def client_for(server, config, scheme="http", **tokens):
    base = f"{scheme}://dav.test:{server.port}"
    tokens = TokenSet(
        server_url=base + "/", username="ann", password="secret", calendar_home=base + "/home/", **tokens,
    )
    client = caldav.CaldavClient(config, tokens, session=session(config))
    client.calendar_id = base + "/home/impact-classes-g/"
    return client


def create(key=1):
    body = {"summary": "Pottery", "description": "", "location": "", "allday": False, "start": "2031-05-06T09:00:00",
            "end": "2031-05-06T10:00:00", "modified": "2031-01-01T12:00:00", "sequence": 1, "marker": "m"}
    return Operation(key=key, action=CREATE, body=body, client_id=f"{key}-42@db")


def test_push_to_a_host_no_longer_allowed_pauses_the_account(sockets):
    with Server({}) as server:
        sockets["allowed"].add(("127.0.0.1", server.port))
        outcome = client_for(server, PUBLIC, scheme="https").push([create()])[1]
    assert outcome.kind is Kind.AUTH_REVOKED and outcome.message == caldav.NOT_ALLOWED
    assert server.seen == [] and sockets["connects"] == []


def test_put_404_backs_off_and_makes_no_calendar_behind_the_synchronizer(sockets):
    """A server that answers every PUT with 404: no MKCALENDAR from the push (the synchronizer
    checks the calendar with get_calendar), and the classes wait with backoff (TRANSIENT, 404),
    instead of GONE, which re-creates at once."""
    with Server({("PUT", "*"): lambda handler: answer(handler, 404)}) as server:
        sockets["allowed"].add(("127.0.0.1", server.port))
        outcomes = client_for(server, PRIVATE_OK).push([create(1), create(2), create(3)])
    assert [method for method, _path, _host in server.seen] == ["PUT"], "the stop policy sends no more"
    assert {(outcome.kind, outcome.status) for outcome in outcomes.values()} == {(Kind.TRANSIENT, 404)}


def test_create_calendar_refused_by_the_server_is_rejected(sockets):
    with Server({("MKCALENDAR", "*"): lambda handler: answer(handler, 403)}) as server:
        sockets["allowed"].add(("127.0.0.1", server.port))
        outcome = client_for(server, PRIVATE_OK).create_calendar("Classes", "g")
    assert (outcome.kind, outcome.message) == (Kind.REJECTED, caldav.CANNOT_CREATE)


def drip(server, prefix, total, step=0.05):
    """A handler that sends ``prefix`` then one byte every ``step`` s, ``total`` bytes in all
    (about ``total * step`` seconds), counting what it could send."""
    def handler(request):
        request.close_connection = True
        request.wfile.write(prefix)
        request.wfile.flush()
        for _byte in range(total):
            time.sleep(step)
            request.wfile.write(b" ")
            request.wfile.flush()
            server.bytes_sent += 1
    return handler


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_dripping_server_is_cut_at_the_deadline(sockets, where):
    total = 400  # 20 s of drip; the deadline below is 0.5 s
    prefix = b"HTTP/1.1 201 Created\r\nX-Slow: " if where == "headers" else (
        b"HTTP/1.1 201 Created\r\nETag: \"1\"\r\nContent-Length: %d\r\n\r\n" % total)
    config = caldav.CaldavConfig(timeout=5, allow_private_hosts=True, deadline=0.5)
    with Server({}) as server:
        server.routes[("PUT", "*")] = drip(server, prefix, total)
        sockets["allowed"].add(("127.0.0.1", server.port))
        outcome = client_for(server, config).push([create()])[1]
    assert outcome.kind is Kind.TRANSIENT and "too large or too slow" in outcome.message
    assert server.bytes_sent < total


def test_a_huge_answer_is_cut_at_the_cap(sockets):
    config = caldav.CaldavConfig(timeout=5, allow_private_hosts=True, max_response_bytes=10_000)

    def huge(request):
        request.close_connection = True
        request.wfile.write(b"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\n\r\n")
        request.wfile.write(PRINCIPAL.format(href="/p/").encode() + b" " * 50_000)

    with Server({("PROPFIND", "/"): huge}) as server:
        sockets["allowed"].add(("127.0.0.1", server.port))
        with pytest.raises(ConnectError) as caught:
            caldav.check_credentials(config, f"http://dav.test:{server.port}/", "ann", "secret", session=session(config))
    assert str(caught.value) == caldav.NOT_CALDAV
    assert [path for _m, path, _h in server.seen] == ["/"], "discovery stopped at the oversized answer"


def test_read_bounded_refuses_an_announced_oversize_without_reading():
    class Announced:
        headers = {"Content-Length": "5000000"}
        closed = False

        def iter_content(self, size):
            raise AssertionError("read")

        def close(self):
            self.closed = True

    response = Announced()
    with pytest.raises(http_limits.ResponseTooLarge):
        http_limits.read_bounded(response, 1000)
    assert response.closed


def test_a_session_never_connects_to_an_address_it_did_not_check(sockets):
    adapter = guarded_http.PinnedAdapter()
    with pytest.raises(netguard.HostNotAllowed):
        adapter.get_connection("https://public.test/")
    assert sockets["connects"] == []
