#!/usr/bin/env python3
"""CI's Odoo stage: install the addon and its bridges on a real Odoo in a fresh database and
run their tests.

    python3 tools/odoo_stage.py [SERIES ...]      (default: 18.0)

For each series it prepares Odoo (``tools/odoo_env.py``), runs

    odoo-bin -d <fresh db> -i impact_calendar_integration,impact_calendar_integration_resource_booking
             --test-tags /impact_calendar_integration,/impact_calendar_integration_resource_booking
             --stop-after-init

(the bridge's OCA dependencies come from PyPI wheels: ``odoo_env.oca_addons``),
drops the database, and prints ``odoo-<series>: N passed, N failed`` (N passed = tests run
without failure or error). The series fails when a test fails or errors, when no test ran or any
test was skipped (a class without its emulators, a tour without Chromium), on any ERROR or
CRITICAL log line, and on any WARNING about the addon before the post-install tests start.
With no Odoo at hand it says so in one line; it then fails under ``CI=true`` and skips otherwise.
Exit status: 0 when every series passed (or was skipped outside CI), 1 otherwise.
"""

import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import odoo_env  # noqa: E402  pylint: disable=wrong-import-position

ADDON = "impact_calendar_integration"
# Installed and tested with the addon; their OCA dependencies are on the addons path.
BRIDGES = ("impact_calendar_integration_resource_booking",)
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) (?P<db>\S+) (?P<logger>\S+): (?P<message>.*)")
RESULT = re.compile(r"(?P<failed>\d+) failed, (?P<errors>\d+) error\(s\) of (?P<run>\d+) tests when loading database")
SKIPPED = re.compile(r"^skipped ")
POST_TESTS = "Starting post tests"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def judge(log_lines):
    """Read an Odoo log: (passed, failed, problems). ``failed`` counts failures and errors."""
    problems = []
    result = None
    installing = True
    skipped = 0
    for line in log_lines:
        record = RECORD.match(line)
        if not record:
            continue
        level, logger, message = record["level"], record["logger"], record["message"]
        if POST_TESTS in message:
            installing = False
        found = RESULT.search(message)
        if found:
            result = found
        if SKIPPED.match(message):
            skipped += 1
            problems.append(f"skipped test: {message}")
        elif level in ("ERROR", "CRITICAL") and not found:
            problems.append(f"{level} {logger}: {message}")
        elif level == "WARNING" and installing and (ADDON in logger or ADDON in message):
            problems.append(f"WARNING while installing: {logger}: {message}")
    if result is None:
        problems.append("Odoo printed no test result (did the install fail?)")
        return 0, 0, problems
    run = int(result["run"])
    failed = int(result["failed"]) + int(result["errors"])
    if not run:
        problems.append("no test ran")
    if failed:
        problems.append(f"{failed} test(s) failed or errored")
    return run - failed - skipped, failed, problems


def run_series(series, keep_log_dir):
    started = time.monotonic()
    try:
        odoo_dir, python, db_options = odoo_env.prepare(series)
        oca_dir = odoo_env.oca_addons(series)
    except odoo_env.EnvError as exc:
        return None, str(exc)
    database = f"impact_ci_{series.replace('.', '')}_{os.getpid()}"
    log_path = os.path.join(keep_log_dir, f"odoo-{series}.log")
    command = [
        python, os.path.join(odoo_dir, "odoo-bin"),
        f"--addons-path={odoo_env.addons_path(odoo_dir, oca_dir, odoo_env.REPO)}",
        *db_options, "-d", database, f"--http-port={free_port()}", "--http-interface=127.0.0.1",
        "-i", ",".join((ADDON, *BRIDGES)), f"--test-tags={','.join(f'/{name}' for name in (ADDON, *BRIDGES))}",
        "--stop-after-init", "--log-level=info",
        "--max-cron-threads=0",
        *odoo_env.series_options(series),
    ]
    print(f"[odoo-{series}] setup {time.monotonic() - started:.0f} s; running the addons' tests "
          f"(log: {log_path})", flush=True)
    odoo_env.drop_database(database)
    try:
        with open(log_path, "w", encoding="utf-8") as log_file:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
            lines, echoing = [], False
            for line in process.stdout:
                log_file.write(line)
                lines.append(line.rstrip("\n"))
                record = RECORD.match(line)
                if record:
                    # What a reader of CI wants: test outcomes and anything above INFO, with
                    # the traceback lines that follow them.
                    echoing = record["level"] != "INFO" or bool(
                        RESULT.search(line) or " post-tests in " in line or SKIPPED.match(record["message"])
                    )
                if echoing:
                    print(line, end="", flush=True)
            code = process.wait()
    finally:
        odoo_env.drop_database(database)
    passed, failed, problems = judge(lines)
    if code and not problems:
        problems.append(f"odoo-bin exited {code}")
    print(f"[odoo-{series}] {time.monotonic() - started:.0f} s in all")
    return (passed, failed, problems), None


def main(argv):
    series_list = argv or ["18.0"]
    log_dir = os.environ.get("ODOO_STAGE_LOGS") or os.path.join(odoo_env.CACHE, "logs")
    os.makedirs(log_dir, exist_ok=True)
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    status = 0
    for series in series_list:
        outcome, unavailable = run_series(series, log_dir)
        if unavailable:
            verdict = "FAILED (CI=true)" if ci else "skipped"
            print(f"odoo-{series}: not run: {unavailable} -> {verdict}")
            status |= int(ci)
            continue
        passed, failed, problems = outcome
        for problem in problems:
            print(f"[odoo-{series}] problem: {problem}")
        status |= int(bool(problems))
        print(f"odoo-{series}: {passed} passed, {failed} failed")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
