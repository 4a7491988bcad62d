#!/usr/bin/env python3
"""Push throughput of the provider clients against the loopback emulators (no Odoo).

For each provider (Google Calendar, Microsoft Graph) and each size n (default 1,000 and 10,000)
a workload of n changes -- a third creates, a third updates, a third deletes, interleaved -- is
pushed into one user's calendar with a simulated network round trip (``emulator.latency``,
default 50 ms, added to every HTTP request the emulator serves):

* batched:   ``client.push(ops)`` -- Google batch of 50, Graph ``$batch`` of 20 (4 dependsOn
             chains, so at most 4 items run at once in the mailbox);
* rounds:    ``client.push`` called per BATCH_SIZE operations, as the synchronizer does (it
             claims BATCH_SIZE links per round, read from the synchronizer's source): shows what
             the engine really sends;
* unbatched: one HTTP call per change, ``client.push([op])`` (Graph: the plain request; Google:
             a batch of one part). Measured in
             full up to ``--unbatched-max`` changes (default 1,000); bigger sizes are
             extrapolated linearly from that measured run (the output says so).

Updates and deletes need existing events: they are created first, with the latency switched
off, and are not part of the measurement.

Quotas and throttling are switched off in the emulators so they do not interfere: Google
``requests_per_minute = None``; Graph ``rate_limit = None`` and ``concurrency_limit`` raised so
the emulator *observes* (instead of capping) how many requests run at once per mailbox. Any
non-success outcome is counted and printed. The real services' limits are printed next to the
figures (Google 600 requests/min/user with batch parts counted one by one; Graph 10,000
requests/10 min/mailbox).

Run:  .venv-ci/bin/python benchmarks/push_throughput.py [--sizes 1000 10000] [--latency 0.05]
"""

import argparse
import json
import math
import os
import re
import socket
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import _path  # noqa: F401  (makes the addon's sync package and tests/emulators importable)

import requests
from impact_calendar_integration.tests.emulators import tls
from impact_calendar_integration.tests.emulators.google import GoogleEmulator
from impact_calendar_integration.tests.emulators.microsoft import MicrosoftEmulator

from impact_calendar_integration.sync.providers.microsoft import oauth as oauth_microsoft
from impact_calendar_integration.sync.providers.google.config import GoogleConfig
from impact_calendar_integration.sync.providers.microsoft.config import MicrosoftConfig
from impact_calendar_integration.sync import providers
from impact_calendar_integration.sync.payload import ClassSnapshot
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE, Operation
from impact_calendar_integration.sync.tokens import TokenSet
from impact_calendar_integration.sync.providers.google import GoogleCalendarClient
from impact_calendar_integration.sync.providers.microsoft import GraphCalendarClient
from impact_calendar_integration.sync.outcomes import Kind

TARGET_BATCH = {"google": 50, "microsoft": 20}
SYNCHRONIZER = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "impact_calendar_integration", "models", "impact_calendar_synchronizer.py",
)
with open(SYNCHRONIZER, encoding="utf-8") as _source:
    # links the synchronizer claims per round (read, not imported: that module needs Odoo)
    ROUND = int(re.search(r"^BATCH_SIZE = (\d+)", _source.read(), re.M).group(1))
NAMESPACE = "bench-db-uuid"
START = datetime(2031, 1, 6, 9, 0)


# -- workload ------------------------------------------------------------------------------------
def body(provider, ref, roster):
    snapshot = ClassSnapshot(
        event_ref=ref,
        name=f"Pottery class {ref}",
        start=START + timedelta(hours=ref),
        stop=START + timedelta(hours=ref, minutes=50),
        location="Studio 2",
        roster_count=roster,
        record_url=f"https://odoo.example.com/odoo/calendar.event/{ref}",
        marker=f"{NAMESPACE}:{ref}",
    )
    return providers.get(provider).build_body(snapshot)


def client_id(provider, ref):
    return providers.get(provider).client_id(NAMESPACE, ref, 7, 0)


def split(n):
    """(creates, updates, deletes) of an n-change workload."""
    updates = deletes = n // 3
    return n - updates - deletes, updates, deletes


def seed_ops(provider, n):
    """Creates for the events the workload will update or delete (refs 1..u+d)."""
    _c, updates, deletes = split(n)
    return [
        Operation(key=ref, action=CREATE, body=body(provider, ref, 1), client_id=client_id(provider, ref))
        for ref in range(1, updates + deletes + 1)
    ]


def workload(provider, n, external_ids):
    """n interleaved operations: create (new refs), update and delete (seeded refs)."""
    creates, updates, deletes = split(n)
    new_refs = iter(range(10**6, 10**6 + creates))
    update_refs = iter(range(1, updates + 1))
    delete_refs = iter(range(updates + 1, updates + deletes + 1))
    ops = []
    remaining = {CREATE: creates, UPDATE: updates, DELETE: deletes}
    while any(remaining.values()):
        for action in (CREATE, UPDATE, DELETE):
            if not remaining[action]:
                continue
            remaining[action] -= 1
            if action == CREATE:
                ref = next(new_refs)
                ops.append(Operation(key=ref, action=CREATE, body=body(provider, ref, 2), client_id=client_id(provider, ref)))
            elif action == UPDATE:
                ref = next(update_refs)
                ops.append(Operation(key=ref, action=UPDATE, body=body(provider, ref, 3), external_id=external_ids[ref]))
            else:
                ref = next(delete_refs)
                ops.append(Operation(key=ref, action=DELETE, external_id=external_ids[ref]))
    return ops


# -- providers ---------------------------------------------------------------------------------
def no_delay(emulator):
    """TCP_NODELAY on the emulator's listening socket (accepted sockets inherit it on Linux).

    Without it a Graph ``$batch`` answer of 20 items (over 16 KB: two TLS records, two writes)
    meets Nagle on the server and the client's delayed ACK: +40 ms per batch, an artifact of the
    loopback server, not of the client. Real Graph/Google front ends do not delay this way.
    """
    emulator._httpd.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # pylint: disable=protected-access
    return emulator


class GoogleSide:
    name = "google"
    label = "Google Calendar"

    def __init__(self):
        self.emulator = no_delay(GoogleEmulator().start())
        self.emulator.requests_per_minute = None  # per-user quota off (the default; set explicitly)
        self.config = GoogleConfig(**self.emulator.config_kwargs(), timeout=30)
        self.count = 0

    def new_client(self):
        self.count += 1
        email = f"bench{self.count}@example.com"
        access, refresh = self.emulator.issue_tokens(email)
        tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3500)
        return email, GoogleCalendarClient(self.config, tokens)

    def api_request(self, entry):
        return entry.path.startswith(("/batch/", "/calendar/v3/"))

    def max_concurrency(self, email):
        return None

    def stop(self):
        self.emulator.stop()


class GraphSide:
    name = "microsoft"
    label = "Microsoft Graph"

    def __init__(self):
        self._trust = tls.trusted()
        self._trust.__enter__()
        # rate limit off; concurrency limit raised far above 4 so the emulator measures, not caps
        self.emulator = no_delay(MicrosoftEmulator(rate_limit=None, concurrency_limit=1000).start())
        self.config = MicrosoftConfig(**self.emulator.config_kwargs(), timeout=30)
        self.count = 0

    def new_client(self):
        self.count += 1
        email = f"bench{self.count}@contoso.test"
        self.emulator.seed_user(email)
        self.emulator.consent_as = email
        flow = oauth_microsoft.start_flow(self.config, "http://localhost/cb", "bench-state")
        answer = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
        tokens, _email = oauth_microsoft.finish_flow(self.config, flow, dict(parse_qsl(urlsplit(answer.headers["Location"]).query)))
        return email, GraphCalendarClient(self.config, tokens)

    def api_request(self, entry):
        return entry.path.startswith("/v1.0/")

    def max_concurrency(self, email):
        return self.emulator.max_concurrency(email)

    def stop(self):
        self.emulator.stop()
        self._trust.__exit__(None, None, None)


# -- one measured run -----------------------------------------------------------------------------
def prepare(side, n, latency):
    """A fresh user whose calendar holds the events the workload updates/deletes."""
    emulator = side.emulator
    emulator.latency = 0.0
    email, client = side.new_client()
    seeds = seed_ops(side.name, n)
    outcomes = client.push(seeds)
    bad = [o for o in outcomes.values() if o.kind is not Kind.DONE]
    if bad:
        raise RuntimeError(f"seeding failed: {Counter(o.kind.value for o in bad)}")
    external_ids = {key: outcome.external_id for key, outcome in outcomes.items()}
    ops = workload(side.name, n, external_ids)
    if side.name == "microsoft":
        # reset the mailbox's high-water mark: only the measured pushes count
        with emulator.lock:
            emulator.mailboxes[emulator.user(email).oid].max_in_flight = 0
    emulator.latency = latency
    return email, client, ops


def run(side, mode, n, latency):
    email, client, ops = prepare(side, n, latency)
    emulator = side.emulator
    mark = len(emulator.log)
    started = time.perf_counter()
    cpu = time.process_time()
    client_cpu = time.thread_time()  # this thread runs only the client; the emulator serves in others
    outcomes = {}
    if mode == "batched":
        outcomes = client.push(ops)
    elif mode == "rounds":
        for start in range(0, len(ops), ROUND):
            outcomes.update(client.push(ops[start : start + ROUND]))
    else:
        for op in ops:
            outcomes.update(client.push([op]))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    client_cpu = time.thread_time() - client_cpu
    emulator.latency = 0.0
    with emulator.lock:
        served = emulator.log[mark:]
    api = sum(1 for entry in served if side.api_request(entry))
    return {
        "provider": side.name,
        "mode": mode,
        "n": n,
        "measured": n,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "client_cpu_seconds": client_cpu,
        "api_requests": api,
        "other_requests": len(served) - api,
        "outcomes": Counter(o.kind.value for o in outcomes.values()),
        "http_statuses": Counter(entry.status for entry in served),
        "max_concurrency": side.max_concurrency(email),
        "extrapolated": False,
    }


def extrapolate(measured, n):
    factor = n / measured["n"]
    return dict(
        measured,
        n=n,
        seconds=measured["seconds"] * factor,
        cpu_seconds=measured["cpu_seconds"] * factor,
        client_cpu_seconds=measured["client_cpu_seconds"] * factor,
        api_requests=round(measured["api_requests"] * factor),
        other_requests=measured["other_requests"],
        extrapolated=True,
    )


# -- report ---------------------------------------------------------------------------------------
def report(results, latency, started):
    print()
    print(f"Push throughput, simulated round trip {latency * 1000:.0f} ms per HTTP request; machine: {_path.machine()}")
    print(f"date: {datetime.now().isoformat(timespec='seconds')}, total benchmark time {time.perf_counter() - started:.0f} s")
    print("workload: n changes = 1/3 creates + 1/3 updates + 1/3 deletes, interleaved, one user/mailbox")
    header = (
        f"{'provider':<10} {'n':>6} {'mode':<10} {'time s':>8} {'changes/s':>10} {'API req':>8} {'req/1000':>9} "
        f"{'target':>7} {'req/target':>10} {'vs unbatched':>12} {'max conc':>8} {'cpu ms/chg':>13}  outcomes"
    )
    print(header)
    print("-" * len(header))
    index = {(r["provider"], r["n"], r["mode"]): r for r in results}
    for r in results:
        target = math.ceil(r["n"] / TARGET_BATCH[r["provider"]])
        unbatched = index.get((r["provider"], r["n"], "unbatched"))
        speedup = f"x{unbatched['seconds'] / r['seconds']:.1f}" if unbatched and r["mode"] != "unbatched" else ""
        conc = "" if r["max_concurrency"] is None else str(r["max_concurrency"])
        cpu = f"{r['client_cpu_seconds'] * 1000 / r['n']:.2f}/{r['cpu_seconds'] * 1000 / r['n']:.2f}"
        note = " (extrapolated from the measured %d)" % r["measured"] if r["extrapolated"] else ""
        outcomes = ",".join(f"{k}={v}" for k, v in sorted(r["outcomes"].items()))
        print(
            f"{r['provider']:<10} {r['n']:>6} {r['mode']:<10} {r['seconds']:>8.2f} {r['n'] / r['seconds']:>10.1f} "
            f"{r['api_requests']:>8} {r['api_requests'] * 1000 / r['n']:>9.1f} {target:>7} "
            f"{r['api_requests'] / target:>10.2f} {speedup:>12} {conc:>8} {cpu:>13}  {outcomes}{note}"
        )
    print()
    print("cpu ms/chg = client thread / whole process (client + in-process emulator threads, one GIL, 2 cores), per change.")
    print("Emulator sockets use TCP_NODELAY (see no_delay()): otherwise each 20-item Graph $batch pays +40 ms of Nagle/delayed-ACK.")
    print(f"rounds = push() per {ROUND} ops, as the synchronizer claims {ROUND} links per round.")
    print("target = ceil(n/50) HTTP requests for Google, ceil(n/20) for Graph (batched). req/target 1.00 = on target.")
    graph = [r for r in results if r["provider"] == "microsoft" and r["mode"] != "unbatched" and not r["extrapolated"]]
    if graph:
        worst = max(r["max_concurrency"] or 0 for r in graph)
        verdict = "OK" if worst <= 4 else "OVER TARGET"
        print(f"Graph max observed concurrency per mailbox over batched runs: {worst} (target <= 4): {verdict}")
    non_done = [r for r in results if set(r["outcomes"]) - {"done"}]
    statuses = Counter()
    for r in results:
        statuses.update(r["http_statuses"])
    print(f"HTTP statuses served during measured runs: {dict(sorted(statuses.items(), key=lambda kv: str(kv[0])))}")
    if non_done:
        print("NOTE: some runs had non-success outcomes (throttling or errors interfered):")
        for r in non_done:
            print(f"  {r['provider']} n={r['n']} {r['mode']}: {dict(r['outcomes'])}")
    else:
        print("Every change succeeded: no quota/throttling interference (emulator limits were switched off).")
    print(
        "Real-service limits (not emulated here): Google counts each batch part against 600 requests/min per user,\n"
        "  so one user's 10,000 changes need >= 16.7 min however they are batched; Graph allows 10,000 requests\n"
        "  (batch items counted) per 10 min per mailbox and 4 concurrent: 10,000 changes fit one window exactly."
    )
    print(
        "other requests (OAuth/discovery, not API) per run: "
        + ", ".join(sorted({f"{r['provider']}={r['other_requests']}" for r in results}))
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--latency", type=float, default=0.05, help="simulated round trip per HTTP request (s)")
    parser.add_argument("--unbatched-max", type=int, default=500, help="largest unbatched run measured in full")
    parser.add_argument("--rounds-max", type=int, default=1000, help="largest rounds run measured in full")
    parser.add_argument("--providers", nargs="+", default=["google", "microsoft"], choices=["google", "microsoft"])
    parser.add_argument("--modes", nargs="+", default=["batched", "rounds", "unbatched"], choices=["batched", "rounds", "unbatched"])
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    started = time.perf_counter()
    results = []
    for provider in args.providers:
        side = GoogleSide() if provider == "google" else GraphSide()
        try:
            measured = {}  # mode -> largest run measured in full, for the extrapolations
            limits = {"unbatched": args.unbatched_max, "rounds": args.rounds_max}
            for n in sorted(args.sizes):
                for mode in args.modes:
                    if mode == "rounds" and provider == "google":
                        continue  # identical to batched for Google when a round is whole batches of 50
                    if n > limits.get(mode, n):
                        if mode not in measured:
                            measured[mode] = run(side, mode, limits[mode], args.latency)
                        result = extrapolate(measured[mode], n)
                    else:
                        result = run(side, mode, n, args.latency)
                        measured[mode] = result
                    results.append(result)
                    print(
                        f"  {provider} n={n} {mode}: {result['seconds']:.2f} s, {result['api_requests']} API requests"
                        + (" (extrapolated)" if result["extrapolated"] else ""),
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            side.stop()
    report(results, args.latency, started)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump([dict(r, outcomes=dict(r["outcomes"]), http_statuses={str(k): v for k, v in r["http_statuses"].items()}) for r in results], out, indent=1)


if __name__ == "__main__":
    main()
