#!/usr/bin/env python3
"""Try the addon on a real Odoo with one command: no Odoo, virtualenv or odoo.conf to set up.

    python3 demo/try_it.py [--series 18.0] [--self-test] [--reset] [--db impact_demo] [-- ODOO-BIN OPTIONS]

It prepares Odoo the way CI's Odoo stage does (``tools/odoo_env.py``: the shared archive or
``$ODOO_SRC``, a cached virtualenv with Odoo's and the addon's requirements, PostgreSQL on
127.0.0.1:5432 with the role ``odoo``), then hands over to ``demo/odoo_demo.py`` run with that
virtualenv's Python: the addon with its demo data and both emulators on http://127.0.0.1:8069.
Every option but ``--series`` goes to odoo_demo.py (``--help`` there lists them). Standard
library only: run it with the machine's ``python3``.
"""

import argparse
import os
import sys
import time

# The demo reports the time from here to Odoo's login page answering.
STARTED = time.time()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))
import odoo_env  # noqa: E402  pylint: disable=wrong-import-position


def main(argv):
    # odoo-bin options after "--" are kept apart: argparse must not read them.
    after = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        description="A real Odoo with the addon, its demo data and the Google/Microsoft emulators.",
        epilog="Other options go to demo/odoo_demo.py: --self-test, --reset, --db NAME, --http-port N, "
               "--google-port N, --microsoft-port N; odoo-bin options go after --.")
    parser.add_argument("--series", default="18.0", help="Odoo series (default 18.0)")
    args, demo_args = parser.parse_known_args(argv)
    try:
        odoo_dir, python, db_options = odoo_env.prepare(args.series, browser=False)
    except odoo_env.EnvError as exc:
        sys.exit(f"[try-it] {exc}")
    print(f"[try-it] Odoo {args.series} in {odoo_dir}, {time.time() - STARTED:.0f} s to prepare", flush=True)
    command = [
        python, os.path.join(REPO, "demo", "odoo_demo.py"), "--odoo", odoo_dir, *demo_args,
        "--", *db_options, *odoo_env.series_options(args.series, demo=True), *after,
    ]
    env = dict(os.environ, IMPACT_DEMO_STARTED=repr(STARTED))
    os.execve(python, command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
