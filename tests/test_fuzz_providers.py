"""Provider-answer fuzzer (issue 21): whatever a calendar server answers, one account's round
ends with every link in a state that is retried at a finite, clamped time or is final, and the
next account of the round is pushed as if nothing happened.

Property-based (hypothesis), with a fixed seed and a bounded number of examples per provider
(``FUZZ_EXAMPLES``, default 200). Each example builds a round as the Odoo worker runs it: two
accounts' links claimed together in a real PostgreSQL outbox, the first account's client (the
real client library: googleapiclient over httplib2, requests for Graph and CalDAV) pushed
against a loopback server that answers with generated garbage (status codes, ``Retry-After``
and ``Location`` headers, empty, huge, malformed or wrongly typed bodies, truncated multipart
batches, ``$batch`` items without ids or with odd statuses, dropped connections), every outcome
settled by the engine and recorded by the outbox; then the second account, against a healthy
server of its own. The drip of a slow server is checked on its own, below the fuzzer.
"""

import email.utils
import gzip
import http
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import fields, replace
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pg import connect, outbox_schema

from impact_calendar_integration.sync import engine, outbox, policy
from impact_calendar_integration.sync.providers.google.config import GoogleConfig
from impact_calendar_integration.sync.providers.microsoft.config import MicrosoftConfig
from impact_calendar_integration.sync.providers.google.ids import deterministic_event_id
from impact_calendar_integration.sync.providers.microsoft.ids import transaction_id
from impact_calendar_integration.sync.outcomes import Kind, Outcome
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE, Operation
from impact_calendar_integration.sync.payload import ClassSnapshot
from impact_calendar_integration.sync.providers.caldav import CaldavClient, CaldavConfig
from impact_calendar_integration.sync.providers.caldav import build_body as caldav_build_body
from impact_calendar_integration.sync.providers.google import GoogleCalendarClient
from impact_calendar_integration.sync.providers.microsoft import GraphCalendarClient
from impact_calendar_integration.sync.tokens import TokenSet
from impact_calendar_integration.tests.emulators import tls
from impact_calendar_integration.tests.emulators.common import LoopbackServer, Response
from impact_calendar_integration.tests.emulators.google import GoogleEmulator
from impact_calendar_integration.tests.emulators.microsoft import DEFAULT_USER, MicrosoftEmulator

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SEED = 21
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no replay of earlier failures: every CI run sees the same examples
    suppress_health_check=list(HealthCheck),
)
CAP = 64 * 1024  # a small size cap, so that "huge" stays cheap
TIMEOUT = 3
GUSER = "fuzz@example.com"
FINAL = {outbox.SYNCED, outbox.REJECTED, outbox.PAUSED}

# -- strategies ------------------------------------------------------------------------------------
RETRY_AFTER = st.one_of(
    st.sampled_from([
        "100000000000000", "1" * 400, "1e400", "-5", "nan", "inf", "NaN", "²", "٣", "0", "3", "3.5", "",
        "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 99999999 00:00:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 +9999", "soon",
    ]),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(lambda s: email.utils.formatdate(s, usegmt=True), st.floats(0, 4 * 10**9)),
    st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=30),
)
LOCATION = st.sampled_from([
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:1/", "//evil.example/x", "javascript:alert(1)",
    "http://[::1", "/relative/path", "ftp://example.com/", "", "\u00e9\u00e8",
])
STATUS = st.one_of(
    st.sampled_from([200, 201, 204, 207, 301, 302, 304, 400, 401, 403, 404, 409, 410, 412, 423, 424, 429, 500, 502, 503, 504]),
    st.integers(200, 599),
)
PART_STATUS = st.sampled_from([s.value for s in http.HTTPStatus if s.value >= 200])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ODD_ID = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.just("a\x00b"), st.lists(st.integers(), max_size=2), JSON)
SHAPED = st.one_of(  # bodies that look like the providers' own, with wrong types and values
    st.fixed_dictionaries({"id": ODD_ID}, optional={"status": st.sampled_from(["confirmed", "cancelled", 3, None])}),
    st.fixed_dictionaries({"error": st.one_of(JSON, st.fixed_dictionaries(
        {"code": st.one_of(st.integers(), st.text(max_size=12)), "message": st.one_of(st.text(max_size=40), JSON)},
        optional={"errors": st.one_of(JSON, st.lists(st.fixed_dictionaries({"reason": st.sampled_from(
            ["rateLimitExceeded", "userRateLimitExceeded", "insufficientPermissions", "backendError", "x"])}), max_size=2))},
    ))}),
)
RAW = st.one_of(
    st.just(b""),
    st.binary(max_size=120),
    st.sampled_from([
        b"<html><body><h1>502 Bad Gateway</h1></body></html>", b'{"id": ', b"null", b"[]", b'"created"',
        b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000, b"<?xml version='1.0'?><d:multistatus xmlns:d='DAV:'><d:resp",
        b"\x00\x01\x02", b"x" * (CAP + 1), b'{"id": "' + b"y" * (2 * CAP) + b'"}',
    ]),
    JSON.map(lambda value: json.dumps(value).encode()),
    SHAPED.map(lambda value: json.dumps(value).encode()),
)
CONTENT_TYPE = st.sampled_from([
    "application/json; charset=UTF-8", "text/html", "text/plain", "application/xml", "multipart/mixed; boundary=x",
    "multipart/mixed", "application/octet-stream",
])


@st.composite
def answers(draw):
    """One HTTP answer: status, headers, body."""
    headers = {}
    if draw(st.booleans()):
        headers["Retry-After"] = draw(RETRY_AFTER)
    if draw(st.integers(0, 4)) == 0:
        headers["Location"] = draw(LOCATION)
    if draw(st.integers(0, 4)) == 0:
        headers["ETag"] = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10))
    return {"status": draw(STATUS), "headers": headers, "body": draw(RAW), "content_type": draw(CONTENT_TYPE)}


@st.composite
def faults(draw, answer_strategy):
    """What the first requests of the fuzzed account get: a list of answers, or a drop."""
    plan = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:
            plan.append({"drop": True, "after_handling": draw(st.booleans())})
        else:
            plan.append(draw(answer_strategy))
    return plan


@st.composite
def operations(draw, build):
    """1-4 operations of the fuzzed account: creates, and updates/deletes of ids the server may
    not know (their links hold that id)."""
    ops = []
    for n in range(draw(st.integers(1, 4))):
        ops.append(build(n, draw(st.sampled_from([CREATE, CREATE, UPDATE, DELETE]))))
    return ops


# -- the round -------------------------------------------------------------------------------------
class Round:
    """Two accounts' links claimed in one round of a real outbox; account 1 is pushed first."""

    def __init__(self, cr):
        self.cr = cr

    def prepare(self, ops_a, ops_b):
        cr = self.cr
        cr.execute("TRUNCATE impact_calendar_link RESTART IDENTITY")
        self.links = {}
        for account, ops in ((1, ops_a), (2, ops_b)):
            for op in ops:
                cr.execute(
                    """INSERT INTO impact_calendar_link (event_ref, event_id, user_id, account_id, external_id)
                       VALUES (%s, %s, %s, %s, %s) RETURNING id""",
                    (len(self.links) + 1, len(self.links) + 1, account, account, op.external_id),
                )
                self.links[(account, op.key)] = cr.fetchone()[0]
        cr.connection.commit()
        self.token = uuid.uuid4().hex
        self.seqs = dict(outbox.claim(cr, self.token, limit=100))
        cr.connection.commit()
        assert len(self.seqs) == len(self.links)

    def push(self, account, client, ops):
        """What ``_push_account`` does with a client's answers; returns the outcomes."""
        outcomes = client.push(ops)
        assert set(outcomes) == {op.key for op in ops}
        for op in ops:
            outcome = outcomes[op.key]
            assert isinstance(outcome, Outcome) and isinstance(outcome.kind, Kind), outcome
            link_id = self.links[(account, op.key)]
            link = engine.LinkState(external_id=op.external_id, attempts=0)
            transition = engine.settle(op, outcome, link)
            if transition.delay is not None:
                assert 0 <= transition.delay <= policy.MAX_DELAY, transition
            outbox.record(self.cr, link_id, self.token, self.seqs[link_id], transition)
            if transition.hold:
                outbox.hold_account(self.cr, account, transition.hold)
        self.cr.connection.commit()
        return outcomes

    def check(self, account, expect_synced=False):
        """Every link of ``account`` is final, or due again at a finite, clamped time."""
        self.cr.execute(
            """SELECT id, state, dirty, claim_token,
                      extract(epoch FROM next_try - (now() AT TIME ZONE 'UTC'))
                 FROM impact_calendar_link WHERE account_id = %s""",
            (account,),
        )
        rows = self.cr.fetchall()
        self.cr.connection.commit()
        for link_id, state, dirty, claim_token, wait in rows:
            assert claim_token is None, (link_id, "a claim left behind")
            if expect_synced:
                assert (state, dirty) == (outbox.SYNCED, False), (link_id, state)
            elif dirty and state not in FINAL:
                assert wait is None or wait <= policy.MAX_DELAY + 5, (link_id, state, wait)
            else:
                assert state in FINAL or state == outbox.PENDING, (link_id, state)


@pytest.fixture(scope="module")
def outbox_round():
    with outbox_schema() as schema:
        conn = connect(schema)
        with conn.cursor() as cr:
            yield Round(cr)
        conn.close()


class Fuzzed:
    """Serves the planned answers to the first requests of ``server`` (batch parts included),
    then the server's own; installed on the instance's ``handle``."""

    def __init__(self, server, plan, path_filter=None, make=None):
        self.server = server
        self.plan = [step for step in plan if not step.get("drop")]
        self.original = server.handle
        self.path_filter = path_filter
        self.make = make or (lambda step, req, real: Response(
            step["status"], raw=step["body"], headers=step["headers"], content_type=step["content_type"]))
        for step in plan:
            if step.get("drop"):
                server.inject(r".", drop=True, after_handling=step["after_handling"], times=1)

    def __enter__(self):
        self.server.handle = self._handle
        return self

    def __exit__(self, *exc):
        self.server.__dict__.pop("handle", None)
        self.server.clear_faults()

    def _handle(self, req):
        if self.plan and (self.path_filter is None or self.path_filter(req)):
            step = self.plan.pop(0)
            return self.make(step, req, lambda: self.original(req))
        return self.original(req)


# =================================================================================================
# Google
# =================================================================================================
@pytest.fixture(scope="module")
def google_pair():
    with GoogleEmulator() as fuzzed, GoogleEmulator() as healthy:
        yield fuzzed, healthy


def google_client(server, cap=CAP):
    server.reset()
    server.add_user(GUSER)
    access, refresh = server.issue_tokens(GUSER)
    tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3600)
    return GoogleCalendarClient(GoogleConfig(**server.config_kwargs(), timeout=TIMEOUT, max_response_bytes=cap), tokens)


def google_op(n, action):
    body = {
        "summary": f"Class {n}",
        "start": {"dateTime": "2030-01-07T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-07T11:00:00Z", "timeZone": "UTC"},
    }
    event_id = deterministic_event_id("fuzz", n, 1, 0)
    if action == CREATE:
        return Operation(key=n, action=CREATE, body=body, client_id=event_id)
    return Operation(key=n, action=action, body=body if action == UPDATE else None, external_id=event_id)


@st.composite
def google_answers(draw):
    """A raw answer, a batch part's answer, or the real batch answer mangled."""
    kind = draw(st.sampled_from(["raw", "part", "mangled"]))
    if kind == "raw":
        return dict(draw(answers()), kind="raw")
    if kind == "part":
        body = draw(st.one_of(JSON, SHAPED).map(json.dumps))
        headers = {"Retry-After": draw(RETRY_AFTER)} if draw(st.booleans()) else {}
        return {"kind": "part", "status": draw(PART_STATUS), "headers": headers, "body": body.encode()}
    return {
        "kind": "mangled",
        "cut": draw(st.floats(0, 1)),
        "how": draw(st.sampled_from(["truncate", "drop_part", "content_id", "status_line", "boundary"])),
        "status": draw(PART_STATUS),
    }


def google_answer(step, req, real):
    if step["kind"] == "raw":
        return Response(step["status"], raw=step["body"], headers=step["headers"], content_type=step["content_type"])
    if step["kind"] == "part":
        return Response(step["status"], raw=step["body"], headers=step["headers"])
    response = real()
    text = response.raw
    how = step["how"]
    if how == "truncate":
        response.raw = text[: int(len(text) * step["cut"])]
    elif how == "drop_part":
        boundary = text.split(b"\r\n", 1)[0]
        pieces = text.split(boundary)
        del pieces[1 + int(step["cut"] * max(len(pieces) - 3, 0))]
        response.raw = boundary.join(pieces)
    elif how == "content_id":
        response.raw = text.replace(b"Content-ID: <response-", b"Content-ID: <zz", 1)
    elif how == "status_line":
        response.raw = text.replace(b"HTTP/1.1 200 OK", f"HTTP/1.1 {step['status']} X".encode(), 1)
    else:
        response.headers["Content-Type"] = "multipart/mixed; boundary=nothing-like-it"
    return response


def batch_or_calendar_path(req):
    return req.path.startswith(("/batch/", "/calendar/"))


@seed(SEED)
@FUZZ
@given(plan=faults(google_answers()), ops=operations(google_op))
def test_fuzz_google(google_pair, outbox_round, plan, ops):
    fuzzed_server, healthy_server = google_pair
    fuzzed, healthy = google_client(fuzzed_server), google_client(healthy_server)
    healthy_ops = [google_op(100, CREATE), google_op(101, CREATE)]
    outbox_round.prepare(ops, healthy_ops)
    with Fuzzed(fuzzed_server, plan, batch_or_calendar_path, google_answer):
        outbox_round.push(1, fuzzed, ops)
    outbox_round.check(1)
    outbox_round.push(2, healthy, healthy_ops)
    outbox_round.check(2, expect_synced=True)
    assert len(healthy_server.live_events(GUSER)) == 2


# =================================================================================================
# Microsoft Graph
# =================================================================================================
@pytest.fixture(scope="module")
def graph_pair():
    with tls.trusted(), MicrosoftEmulator() as fuzzed, MicrosoftEmulator() as healthy:
        clients = (graph_client(fuzzed), graph_client(healthy))
        yield (fuzzed, healthy), clients


def graph_client(server, cap=CAP):
    import requests  # pylint: disable=import-outside-toplevel
    from urllib.parse import parse_qs, urlsplit  # pylint: disable=import-outside-toplevel

    from impact_calendar_integration.sync.providers.microsoft import oauth as oauth_microsoft  # pylint: disable=import-outside-toplevel

    config = MicrosoftConfig(**server.config_kwargs(), timeout=TIMEOUT, max_response_bytes=cap)
    flow = oauth_microsoft.start_flow(config, "https://odoo.test/cb", "state")
    location = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10).headers["Location"]
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    tokens, _email = oauth_microsoft.finish_flow(config, flow, answer)
    return config, tokens


def graph_op(n, action):
    body = {
        "subject": f"Class {n}",
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
    }
    if action == CREATE:
        return Operation(key=n, action=CREATE, body=body, client_id=transaction_id("fuzz", n, 1, 0))
    return Operation(key=n, action=action, body=body if action == UPDATE else None, external_id=f"AAMk-fuzz-{n}")


BATCH_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["1", "2", "3", "4"]), ODD_ID),
        "status": st.one_of(STATUS, st.text(max_size=4), st.none(), st.floats(), st.booleans()),
        "headers": st.one_of(st.fixed_dictionaries({"Retry-After": RETRY_AFTER}), JSON),
        "body": st.one_of(SHAPED, JSON),
    },
)


@st.composite
def graph_answers(draw):
    if draw(st.booleans()):
        return dict(draw(answers()), kind="raw")
    responses = draw(st.one_of(st.lists(BATCH_ITEM, max_size=5), JSON))
    return {"kind": "batch", "status": draw(st.sampled_from([200, 200, 200, 207, 400, 429, 503])),
            "body": json.dumps({"responses": responses}).encode()}


def graph_answer(step, req, real):
    if step["kind"] == "raw":
        return Response(step["status"], raw=step["body"], headers=step["headers"], content_type=step["content_type"])
    return Response(step["status"], raw=step["body"])


def graph_api_path(req):
    return req.path.startswith("/v1.0/")


@seed(SEED)
@FUZZ
@given(plan=faults(graph_answers()), ops=operations(graph_op))
def test_fuzz_graph(graph_pair, outbox_round, plan, ops):
    (fuzzed_server, healthy_server), ((fconfig, ftokens), (hconfig, htokens)) = graph_pair
    with healthy_server.lock:
        for mailbox in healthy_server.mailboxes.values():
            mailbox.events.clear()
            mailbox.transactions.clear()
    fuzzed, healthy = GraphCalendarClient(fconfig, ftokens), GraphCalendarClient(hconfig, htokens)
    healthy_ops = [graph_op(100, CREATE), graph_op(101, CREATE)]
    outbox_round.prepare(ops, healthy_ops)
    with tls.trusted(), Fuzzed(fuzzed_server, plan, graph_api_path, graph_answer):
        outbox_round.push(1, fuzzed, ops)
    outbox_round.check(1)
    with tls.trusted():
        outbox_round.push(2, healthy, healthy_ops)
    outbox_round.check(2, expect_synced=True)
    assert len(healthy_server.events(DEFAULT_USER)) == 2


# =================================================================================================
# CalDAV: the real client against a small loopback CalDAV store (Radicale would not send garbage)
# =================================================================================================
class CaldavStore(LoopbackServer):
    """Enough of a CalDAV server for pushes into a known calendar: PUT (with If-None-Match and
    If-Match), GET and DELETE of ``/cal/<name>.ics``; discovery is not offered (404)."""

    def __init__(self):
        super().__init__()
        self.resources = {}

    def put(self, req, name):
        with self.lock:
            current = self.resources.get(name)
            if req.headers.get("If-None-Match") == "*" and current:
                return Response(412)
            if req.headers.get("If-Match") and (not current or current[0] != req.headers["If-Match"]):
                return Response(412)
            etag = f'"{uuid.uuid4().hex[:8]}"'
            self.resources[name] = (etag, req.body)
        return Response(201 if not current else 204, headers={"ETag": etag})

    def get(self, req, name):
        current = self.resources.get(name)
        return Response(200, raw=current[1], headers={"ETag": current[0]}, content_type="text/calendar") if current else Response(404)

    def delete(self, req, name):
        with self.lock:
            return Response(204) if self.resources.pop(name, None) else Response(404)

    routes = (
        ("PUT", r"/cal/(?P<name>[^/]+)", put),
        ("GET", r"/cal/(?P<name>[^/]+)", get),
        ("DELETE", r"/cal/(?P<name>[^/]+)", delete),
    )


def caldav_config():
    """The config for a loopback server (private hosts allowed where the config knows them)."""
    known = {field.name for field in fields(CaldavConfig)}
    return replace(CaldavConfig(), **{k: v for k, v in {"timeout": TIMEOUT, "allow_private_hosts": True}.items() if k in known})


def caldav_client(server):
    tokens = TokenSet(server_url=server.base_url + "/", username="u", password="p",
                      calendar_home=server.base_url + "/")
    client = CaldavClient(caldav_config(), tokens)
    client.calendar_id = server.base_url + "/cal/"
    return client


def caldav_op(n, action):
    body = caldav_build_body(ClassSnapshot(
        event_ref=n, name=f"Class {n}", start=datetime(2030, 1, 7, 10), stop=datetime(2030, 1, 7, 11),
        roster_count=1, marker=f"fuzz:{n}", modified=datetime(2030, 1, 1),
    ))
    if action == CREATE:
        return Operation(key=n, action=CREATE, body=body, client_id=f"fuzz-{n}@odoo")
    return Operation(key=n, action=action, body=body if action == UPDATE else None,
                     external_id=f"/cal/fuzz-{n}.ics" + (' "etag"' if n % 2 else ""))


@pytest.fixture(scope="module")
def caldav_pair():
    with CaldavStore() as fuzzed, CaldavStore() as healthy:
        yield fuzzed, healthy


@seed(SEED)
@FUZZ
@given(plan=faults(answers()), ops=operations(caldav_op))
def test_fuzz_caldav(caldav_pair, outbox_round, plan, ops):
    fuzzed_server, healthy_server = caldav_pair
    healthy_server.resources.clear()
    ops = [replace(op, external_id=healthy_server.base_url + op.external_id) if op.external_id else op for op in ops]
    fuzzed, healthy = caldav_client(fuzzed_server), caldav_client(healthy_server)
    ops = [replace(op, external_id=op.external_id.replace(healthy_server.base_url, fuzzed_server.base_url))
           if op.external_id else op for op in ops]
    healthy_ops = [caldav_op(100, CREATE), caldav_op(101, CREATE)]
    outbox_round.prepare(ops, healthy_ops)
    with Fuzzed(fuzzed_server, plan):
        outbox_round.push(1, fuzzed, ops)
    outbox_round.check(1)
    outbox_round.push(2, healthy, healthy_ops)
    outbox_round.check(2, expect_synced=True)
    assert len(healthy_server.resources) == 2


# =================================================================================================
# A server that drips its answer: cut at the total deadline, whatever the per-read timeout
# =================================================================================================
class RawServer:
    """A loopback server writing its answers by hand: ``answer(conn, stop)`` after each request."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            try:
                conn.recv(65536)
                self.answer(conn, self.stop)
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.sock.close()


def drip(conn, stop, pace=0.2, length=10_000):
    """Headers at once, then one byte of body per ``pace`` seconds (well within any per-read
    timeout): 10,000 x 0.2 s for the whole answer."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length)
    for _ in range(length):
        if stop.wait(pace):
            return
        conn.sendall(b" ")


def unannounced(conn, _stop, size=50_000):
    """A body of unknown length (no Content-Length: it ends when the connection closes)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + b" " * size)


def gzip_bomb(conn, _stop, size=5_000_000):
    """A small answer that inflates to megabytes."""
    body = gzip.compress(b" " * size)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


@pytest.fixture
def raw_server(request):
    server = RawServer(request.param)
    yield server
    server.close()


def loopback_google(base_url, **limits):
    config = GoogleConfig(client_id="c", client_secret="s", api_endpoint=base_url + "/calendar/v3/",
                          token_endpoint=base_url + "/token", **limits)
    return GoogleCalendarClient(config, TokenSet(access_token="at", refresh_token="rt", expires_at=time.time() + 3600))


def loopback_graph(base_url, **limits):
    config = MicrosoftConfig(client_id="c", client_secret="s", graph_endpoint=base_url + "/v1.0", **limits)
    client = GraphCalendarClient(config, TokenSet(msal_cache=None, account_id="x"))
    client._access_token = lambda force_refresh=False: "at"  # pylint: disable=protected-access
    return client


@pytest.mark.parametrize("raw_server", [drip], indirect=True)
def test_google_dripping_server_is_cut_at_the_total_deadline(raw_server):
    # Per-read timeout 5 s, a byte every 0.2 s: only the total deadline (1 s) ends the answer.
    outcome = loopback_google(raw_server.base_url, timeout=5, deadline=1).push([google_op(0, CREATE)])[0]
    assert outcome.kind is Kind.TRANSIENT
    assert "within 1 s" in outcome.message


@pytest.mark.parametrize("raw_server", [drip], indirect=True)
def test_graph_dripping_server_is_cut_at_the_total_deadline(raw_server):
    outcome = loopback_graph(raw_server.base_url, timeout=5, deadline=1).push([graph_op(0, CREATE)])[0]
    assert outcome.kind is Kind.TRANSIENT
    assert outcome.message == "Microsoft Graph did not answer in time"


@pytest.mark.parametrize("raw_server", [unannounced], indirect=True)
def test_unannounced_body_over_the_cap_is_refused(raw_server):
    """A body whose size is not announced is counted as it is read."""
    google = loopback_google(raw_server.base_url, max_response_bytes=1000).push([google_op(0, CREATE)])[0]
    graph = loopback_graph(raw_server.base_url, max_response_bytes=1000).push([graph_op(0, CREATE)])[0]
    for outcome in (google, graph):
        assert outcome.kind is Kind.TRANSIENT and "more than 1000 bytes" in outcome.message, outcome


@pytest.mark.parametrize("raw_server", [gzip_bomb], indirect=True)
def test_compressed_answer_is_capped_once_inflated(raw_server):
    google = loopback_google(raw_server.base_url, max_response_bytes=100_000).push([google_op(0, CREATE)])[0]
    graph = loopback_graph(raw_server.base_url, max_response_bytes=100_000).push([graph_op(0, CREATE)])[0]
    for outcome in (google, graph):
        assert outcome.kind is Kind.TRANSIENT and "more than 100000 bytes" in outcome.message, outcome
