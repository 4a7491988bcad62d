#!/usr/bin/env python3
"""A real Odoo to test and try the addon on, from ``../shared/odoo`` or ``$ODOO_SRC``.

Used by ``tools/odoo_stage.py`` (CI's Odoo stage) and ``demo/try_it.py`` (the README's *Try it*).
Everything it makes lives outside the clone, in ``$IMPACT_CI_CACHE`` (default
``~/.cache/impact_calendar_ci``), so that a second run is fast:

- the Odoo source, unpacked once per archive (keyed by its sha256);
- a virtualenv per (Odoo requirements, the addon's ``requirements.txt``, test extras, Python);
- pip's own cache;
- OCA addons from PyPI wheels (``oca_addons``), unpacked once per series.

It also makes sure PostgreSQL answers on 127.0.0.1:5432 with a role of Odoo's own (Odoo refuses
``postgres``) and that Debian's ``chromium`` is installed (tours must run, never skip).
Only the standard library: it runs with the machine's ``python3``.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_ODOO = os.path.join(os.path.dirname(REPO), "shared", "odoo")
CACHE = os.environ.get("IMPACT_CI_CACHE") or os.path.expanduser("~/.cache/impact_calendar_ci")
# What the Odoo tests need beyond the addon's runtime libraries: the Microsoft emulator's, and Odoo's browser tours (skipped without websocket-client).
# throwaway CA, Odoo's browser tours (skipped without websocket-client), and OCA
# resource_booking's external dependency (the bridge addon's tests install it).
# Radicale: the real CalDAV server the CalDAV tests start (3.5+ swaps passlib, pinned by Odoo,
# for libpass).
TEST_EXTRAS = ("trustme>=1.1", "websocket-client", "cssselect", "radicale>=3.2,<3.5")
# Odoo's pinned sdists do not build with newer setuptools.
BUILD_CONSTRAINT = "setuptools<70"
# python-ldap needs Debian's libldap2-dev; no addon we install uses it.
SKIPPED_REQUIREMENTS = ("python-ldap",)
# OCA addons (PyPI distributions) the bridge addons depend on; see oca_addons().
OCA_WHEELS = ("odoo-addon-resource-booking", "odoo-addon-web-calendar-slot-duration")
PG = {"host": "127.0.0.1", "port": "5432", "user": "odoo", "password": "odoo"}


class EnvError(Exception):
    """The Odoo environment cannot be prepared; the message says why in one line."""


def log(message):
    print(f"[odoo-env] {message}", flush=True)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def series_of(odoo_dir):
    """'18.0' or '19.0', read from odoo/release.py without importing it."""
    namespace = {}
    with open(os.path.join(odoo_dir, "odoo", "release.py"), encoding="utf-8") as handle:
        exec(compile(handle.read(), "release.py", "exec"), namespace)  # noqa: S102  # pylint: disable=exec-used
    return namespace["serie"]


def odoo_source(series):
    """The folder holding odoo-bin for this series: $ODOO_SRC if it is that series, else the
    unpacked archive. Raises EnvError when neither exists."""
    given = os.environ.get("ODOO_SRC")
    if given and os.path.isfile(os.path.join(given, "odoo-bin")) and series_of(given) == series:
        return os.path.abspath(given)
    archive = os.path.join(SHARED_ODOO, f"odoo-{series}-calendar.tar.xz")
    if not os.path.isfile(archive):
        raise EnvError(
            f"no Odoo {series}: neither $ODOO_SRC (a {series} checkout) nor {archive} is available"
        )
    target = os.path.join(CACHE, f"odoo-{sha256(archive)[:16]}")
    odoo_dir = os.path.join(target, f"odoo-{series}")
    if not os.path.isfile(os.path.join(odoo_dir, "odoo-bin")):
        log(f"unpacking {os.path.basename(archive)} into {target}")
        os.makedirs(CACHE, exist_ok=True)
        scratch = tempfile.mkdtemp(dir=CACHE)
        with tarfile.open(archive) as tar:
            tar.extractall(scratch)  # noqa: S202  (our own shared archive)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch, target)
    return odoo_dir


def _requirements(odoo_dir):
    with open(os.path.join(odoo_dir, "requirements.txt"), encoding="utf-8") as handle:
        return [
            line for line in handle.read().splitlines()
            if not line.strip().lower().startswith(SKIPPED_REQUIREMENTS)
        ]


def build_constraints(folder):
    """A pip constraints file in ``folder`` holding the build constraint (and this machine's own
    constraints, which PIP_CONSTRAINT would otherwise replace); returns its path."""
    constraints = os.path.join(folder, "build-constraints.txt")
    with open(constraints, "w", encoding="utf-8") as handle:
        machine = "/etc/xdg/pip/constraints.txt"
        if os.path.isfile(machine):
            handle.write(f"-c {machine}\n")
        handle.write(BUILD_CONSTRAINT + "\n")
    return constraints


def _pip(python, args, env):
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", *args],
                          env=env, capture_output=True, text=True, check=False)
    noise = "WARNING: Location '"  # this machine's local indexes: not our concern
    output = "\n".join(
        line for line in (done.stdout + done.stderr).splitlines() if not line.startswith(noise)
    )
    if done.returncode:
        raise EnvError(f"pip install failed (exit {done.returncode}):\n{output[-4000:]}")


def virtualenv(odoo_dir):
    """A virtualenv with Odoo's requirements, the addon's requirements.txt and the test extras,
    installed in two steps as users do (``tools/install_check.py``): Odoo's requirements first,
    then ours with everything already installed as constraints (the README's step 1), so that
    the tests run with the versions a user gets."""
    with open(os.path.join(REPO, "requirements.txt"), encoding="utf-8") as handle:
        ours = handle.read()
    lines = _requirements(odoo_dir)
    key = hashlib.sha256(
        "\n".join([sys.version, *lines, ours, *TEST_EXTRAS, BUILD_CONSTRAINT, "two steps"]).encode()
    ).hexdigest()[:16]
    venv = os.path.join(CACHE, f"venv-{key}")
    python = os.path.join(venv, "bin", "python")
    if os.path.isfile(os.path.join(venv, ".complete")):
        return python
    log(f"building the virtualenv {venv} (first run: about a minute)")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        odoo_req = os.path.join(tmp, "odoo-requirements.txt")
        with open(odoo_req, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        env = dict(os.environ, PIP_CONSTRAINT=build_constraints(tmp), PIP_DISABLE_PIP_VERSION_CHECK="1")
        _pip(python, ["-r", odoo_req], env)
        pins = os.path.join(tmp, "odoo-pins.txt")
        with open(pins, "w", encoding="utf-8") as handle:
            handle.write(subprocess.run([python, "-m", "pip", "list", "--format=freeze"],
                                        capture_output=True, text=True, check=True).stdout)
        _pip(python, ["-r", os.path.join(REPO, "requirements.txt"), *TEST_EXTRAS, "-c", pins], env)
    open(os.path.join(venv, ".complete"), "w", encoding="utf-8").close()
    return python


def _psql(sql, user="postgres"):
    return subprocess.run(
        ["psql", "-h", PG["host"], "-p", PG["port"], "-U", user, "-d", "postgres", "-tAc", sql],
        capture_output=True, text=True, check=False,
    )


def postgres():
    """PostgreSQL on 127.0.0.1:5432 with Odoo's own role; returns the odoo-bin options."""
    ready = ["pg_isready", "-q", "-h", PG["host"], "-p", PG["port"]]
    if subprocess.run(ready, check=False).returncode:
        clusters = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True, check=False)
        version = clusters.stdout.split()[0] if clusters.stdout.split() else ""
        if not version:
            raise EnvError("PostgreSQL does not answer on 127.0.0.1:5432 and no cluster is installed")
        log(f"starting PostgreSQL {version}")
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False
        )
        for _attempt in range(30):
            if not subprocess.run(ready, check=False).returncode:
                break
            time.sleep(1)
        else:
            raise EnvError("PostgreSQL did not start on 127.0.0.1:5432")
    exists = _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PG['user']}'")
    if exists.returncode:
        raise EnvError(f"cannot query PostgreSQL as postgres: {exists.stderr.strip()}")
    if exists.stdout.strip() != "1":
        log(f"creating the PostgreSQL role {PG['user']}")
        made = _psql(f"CREATE ROLE {PG['user']} LOGIN CREATEDB PASSWORD '{PG['password']}'")
        if made.returncode:
            raise EnvError(f"cannot create the role {PG['user']}: {made.stderr.strip()}")
    return [
        f"--db_host={PG['host']}", f"--db_port={PG['port']}",
        f"--db_user={PG['user']}", f"--db_password={PG['password']}",
    ]


def chromium():
    """Debian's chromium, installed when missing: Odoo skips its browser tours without it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0:
        raise EnvError("chromium is missing and only root can install it: apt-get install chromium")
    log("installing Debian's chromium (first run on this machine)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
    done = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode or not shutil.which("chromium"):
        raise EnvError(f"apt-get install chromium failed: {done.stderr.strip()[-2000:]}")
    return shutil.which("chromium")


def drop_database(name):
    subprocess.run(
        ["dropdb", "--if-exists", "-h", PG["host"], "-p", PG["port"], "-U", "postgres", name],
        capture_output=True, check=False,
    )


@contextlib.contextmanager
def cache_lock():
    """One builder at a time: parallel runs (two worktrees, a benchmark beside a test run) share
    the cache, and a second builder would delete the virtualenv the first one is filling."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def prepare(series, browser=True):
    """Everything an odoo-bin run needs: (odoo_dir, python, db options)."""
    with cache_lock():
        odoo_dir = odoo_source(series)
        python = virtualenv(odoo_dir)
    db_options = postgres()
    if browser:
        chromium()
    return odoo_dir, python, db_options


def series_options(series, demo=True):
    """odoo-bin options that differ between series (for a database being created).

    Up to 18.0 a new database gets demo data unless ``--without-demo=all``; from 19.0 it gets
    none unless ``--with-demo``, and a missing ``--http-interface`` is a WARNING (its default
    0.0.0.0 becomes 127.0.0.1 in 20.0): we listen on the loopback only anyway."""
    if int(series.split(".")[0]) >= 19:
        return ["--http-interface=127.0.0.1", *(["--with-demo"] if demo else [])]
    return [] if demo else ["--without-demo=all"]


def oca_addons(series):
    """The folder holding the OCA addons the bridge addons are tested with (see _oca_addons)."""
    with cache_lock():
        return _oca_addons(series)


def _oca_addons(series):
    """The folder holding the OCA addons that the bridge addons are tested with, fetched from
    PyPI as wheels (``pip download --no-deps``: they require an ``odoo`` distribution that PyPI
    does not have) and unpacked once per series. Raises EnvError when pip cannot get them."""
    target = os.path.join(CACHE, f"oca-{series}")
    addons = os.path.join(target, "addons")
    if os.path.isfile(os.path.join(target, ".complete")):
        return addons
    log(f"fetching OCA addons for {series} from PyPI into {target}")
    os.makedirs(CACHE, exist_ok=True)
    scratch = tempfile.mkdtemp(dir=CACHE)
    wheels = os.path.join(scratch, "wheels")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "-d", wheels, *(f"{name}=={series}.*" for name in OCA_WHEELS)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    if done.returncode:
        shutil.rmtree(scratch, ignore_errors=True)
        raise EnvError(f"pip download of {', '.join(OCA_WHEELS)} failed: {done.stderr.strip()[-2000:]}")
    for wheel in sorted(os.listdir(wheels)):
        with zipfile.ZipFile(os.path.join(wheels, wheel)) as archive:
            members = [name for name in archive.namelist() if name.startswith("odoo/addons/")]
            archive.extractall(scratch, members)  # noqa: S202  (addons from PyPI, files only)
    os.replace(os.path.join(scratch, "odoo", "addons"), os.path.join(scratch, "addons"))
    with open(os.path.join(scratch, "WHEELS"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(sorted(os.listdir(wheels))) + "\n")
    shutil.rmtree(wheels)
    shutil.rmtree(os.path.join(scratch, "odoo"))
    open(os.path.join(scratch, ".complete"), "w", encoding="utf-8").close()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(scratch, target)
    return addons


def addons_path(odoo_dir, *extra):
    return ",".join([os.path.join(odoo_dir, "odoo", "addons"), os.path.join(odoo_dir, "addons"), *extra])


if __name__ == "__main__":
    try:
        found = prepare(sys.argv[1] if len(sys.argv) > 1 else "18.0")
    except EnvError as exc:
        sys.exit(f"[odoo-env] {exc}")
    print("\n".join(str(part) for part in found[:2]))
