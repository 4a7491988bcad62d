#!/usr/bin/env python3
"""Scale-out of the outbox drain on real PostgreSQL (no Odoo).

10,000 dirty links (tests/pg.py: a throwaway schema holding the table as the ORM creates it) are
drained by 1, 2 and 4 concurrent workers. Each worker has its own REPEATABLE READ connection,
like an Odoo cron worker, and loops as ``impact.calendar.synchronizer._push_round`` does:

    claim up to 50 due links (sync/outbox.py: UPDATE ... FOR UPDATE SKIP LOCKED, lease) -> commit
    mark_create_sent(links) -> commit            (when sync/outbox.py has it, as the synchronizer does)
    "push" the batch: a fixed sleep per batch (default 20 ms) stands for the provider round trip
    finish_done() per link -> commit

A SerializationFailure (REPEATABLE READ: a row changed since the snapshot) is rolled back and
counted as a retry. Every "push" is recorded per link id; a link pushed twice is a double push
(target 0). At the end the table is checked: no link may be left dirty or unpushed.

Workers are threads by default (psycopg2 and the sleep release the GIL; each has its own
connection, i.e. its own PostgreSQL backend), or processes with ``--processes``.

Run:  .venv-ci/bin/python benchmarks/scale_out.py [--links 10000] [--workers 1 2 4] [--push-ms 20]
"""

import argparse
import multiprocessing
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime

import _path  # noqa: F401  (addon's sync package + tests/ on sys.path)

import psycopg2
import psycopg2.errors
from pg import DSN, connect, insert_links, outbox_schema

from impact_calendar_integration.sync import outbox

MARK_CREATES = hasattr(outbox, "mark_create_sent")  # newer synchronizer: one more UPDATE + commit per round
BATCH = 50  # BATCH_SIZE of models/impact_calendar_synchronizer.py
LEASE = 300  # LEASE_SECONDS of the synchronizer


def drain(schema, push_seconds, batch, deadline):
    """One worker: returns (pushed link ids in order, claim retries, finish retries, lost claims, batches)."""
    conn = connect(schema)
    token = uuid.uuid4().hex
    pushed, claim_retries, finish_retries, lost, batches = [], 0, 0, 0, 0
    try:
        while time.monotonic() < deadline:
            try:
                with conn.cursor() as cr:
                    claimed = outbox.claim(cr, token, limit=batch, lease=LEASE)
                conn.commit()  # the lease must be visible before the network call
            except psycopg2.errors.SerializationFailure:
                conn.rollback()
                claim_retries += 1
                continue
            if not claimed:
                break
            batches += 1
            if MARK_CREATES:
                # The synchronizer records, committed before the network call, that these creates go out.
                while True:
                    try:
                        with conn.cursor() as cr:
                            outbox.mark_create_sent(cr, [link_id for link_id, _seq in claimed])
                        conn.commit()
                        break
                    except psycopg2.errors.SerializationFailure:
                        conn.rollback()
                        finish_retries += 1
            time.sleep(push_seconds)  # the provider round trip of one batch
            pushed.extend(link_id for link_id, _seq in claimed)
            while True:
                try:
                    with conn.cursor() as cr:
                        for link_id, seq in claimed:
                            if not outbox.finish_done(cr, link_id, token, seq, f"ext-{link_id}", "hash", 0):
                                lost += 1
                    conn.commit()
                    break
                except psycopg2.errors.SerializationFailure:
                    conn.rollback()
                    finish_retries += 1
                    if time.monotonic() >= deadline:
                        break
    finally:
        conn.close()
    return pushed, claim_retries, finish_retries, lost, batches


def _drain_process(args):
    return drain(*args)


def measure(links, workers, push_seconds, batch, processes, accounts, timeout):
    with outbox_schema() as schema:
        insert_links(schema, links, accounts=accounts)
        deadline = time.monotonic() + timeout
        started = time.perf_counter()
        if processes:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = pool.map(_drain_process, [(schema, push_seconds, batch, deadline)] * workers)
        else:
            results = [None] * workers

            def target(index):
                results[index] = drain(schema, push_seconds, batch, deadline)

            threads = [threading.Thread(target=target, args=(i,)) for i in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started
        conn = connect(schema)
        with conn.cursor() as cr:
            cr.execute("SELECT count(*) FILTER (WHERE dirty), count(*) FILTER (WHERE external_id IS NULL) FROM impact_calendar_link")
            left_dirty, unpushed = cr.fetchone()
        conn.close()
    pushes = Counter()
    for pushed, *_ in results:
        pushes.update(pushed)
    return {
        "workers": workers,
        "seconds": elapsed,
        "claim_retries": sum(r[1] for r in results),
        "finish_retries": sum(r[2] for r in results),
        "lost_claims": sum(r[3] for r in results),
        "batches": sum(r[4] for r in results),
        "per_worker": [len(r[0]) for r in results],
        "distinct_pushed": len(pushes),
        "double_pushes": sum(count - 1 for count in pushes.values() if count > 1),
        "left_dirty": left_dirty,
        "unpushed": unpushed,
        "timed_out": elapsed >= timeout,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=10000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--push-ms", type=float, default=20.0, help="simulated provider round trip per batch (ms)")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--accounts", type=int, default=50, help="accounts the links are spread over")
    parser.add_argument("--processes", action="store_true", help="workers are processes instead of threads")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound per run (s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per worker count; the median time is shown")
    args = parser.parse_args()

    started = time.perf_counter()
    results = []
    for workers in args.workers:
        runs = []
        for _ in range(args.repeat):
            runs.append(measure(args.links, workers, args.push_ms / 1000, args.batch, args.processes, args.accounts, args.timeout))
            print(f"  {workers} worker(s): {runs[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
        result = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]  # the median run
        result = dict(result, times=[r["seconds"] for r in runs])
        for key in ("claim_retries", "finish_retries", "lost_claims", "double_pushes", "left_dirty", "unpushed"):
            result[key] = sum(r[key] for r in runs)
        result["complete"] = all(r["distinct_pushed"] == args.links for r in runs)
        result["timed_out"] = any(r["timed_out"] for r in runs)
        results.append(result)

    kind = "processes" if args.processes else "threads"
    print()
    print(f"Outbox scale-out: {args.links} dirty links, claim {args.batch}/round, simulated push {args.push_ms:.0f} ms/batch, "
          f"workers = {kind} with one REPEATABLE READ connection each")
    print(f"PostgreSQL: {DSN}; machine: {_path.machine()}; round = claim+commit, "
          + ("mark_create_sent+commit, " if MARK_CREATES else "") + "sleep, finish_done per link+commit")
    print(f"{args.repeat} run(s) per worker count: time = median run; retries, lost claims, double pushes = sums over all runs")
    print(f"date: {datetime.now().isoformat(timespec='seconds')}, total benchmark time {time.perf_counter() - started:.0f} s")
    base = results[0]["seconds"] if results and results[0]["workers"] == 1 else None
    header = (f"{'workers':>7} {'time s':>8} {'links/s':>9} {'speedup':>8} {'ideal':>6} {'efficiency':>10} {'batches':>8} "
              f"{'claim retries':>13} {'other retries':>14} {'lost claims':>11} {'double pushes':>13} {'left dirty':>10}  links per worker (median run)")
    print(header)
    print("-" * len(header))
    for r in results:
        speedup = base / r["seconds"] if base else float("nan")
        print(f"{r['workers']:>7} {r['seconds']:>8.2f} {args.links / r['seconds']:>9.0f} {speedup:>7.2f}x {r['workers']:>5}x "
              f"{speedup / r['workers']:>10.0%} {r['batches']:>8} {r['claim_retries']:>13} {r['finish_retries']:>14} "
              f"{r['lost_claims']:>11} {r['double_pushes']:>13} {r['left_dirty']:>10}  {r['per_worker']}"
              + f"  runs: {', '.join(f'{t:.2f}' for t in r['times'])} s"
              + ("  TIMED OUT" if r["timed_out"] else ""))
    print()
    floor = args.links / args.batch * args.push_ms / 1000
    print(f"Network floor for 1 worker: {args.links}/{args.batch} batches x {args.push_ms:.0f} ms = {floor:.1f} s; "
          "the rest is SQL (claim, " + ("mark_create_sent, " if MARK_CREATES else "") + "one finish UPDATE per link, commits).")
    doubles = sum(r["double_pushes"] for r in results)
    complete = all(r["complete"] and not r["left_dirty"] and not r["unpushed"] for r in results)
    print(f"double pushes: {doubles} (target 0): {'OK' if doubles == 0 else 'FAILED'}; "
          f"every link pushed and clean in every run: {'yes' if complete else 'NO'}")


if __name__ == "__main__":
    main()
