#!/usr/bin/env python3
"""CI's install stage: the README's install, done the way a user does it, leaves the Odoo it goes
into as it was.

    python3 tools/install_check.py SERIES [PYTHON ...]     (e.g. 18.0)

Default Pythons: ``python3`` first, then every other CPython on ``PATH`` (``python3.X``) or
installed by pyenv.

Users install in two steps: Odoo from its own ``requirements.txt``, then the addon's libraries.
A joint ``pip install`` of both (what the test environment once did) lets pip pick versions that
fit Odoo's pins, and hides what the second step alone does. So, for each Python:

1. a new virtualenv with Odoo's ``requirements.txt`` alone (``setuptools<70`` as the build
   constraint, as Odoo's documentation needs; python-ldap left out, see ``tools/odoo_env.py``);
2. the README's step-1 commands, **read from README.md** (between ``<!-- install-step-1 -->``
   and ``<!-- /install-step-1 -->``) and run as written, from the repository, with the
   virtualenv's ``bin`` first on ``PATH``;
3. checks: no package installed in step 1 changed version, ``pip check`` is clean,
   ``from OpenSSL import crypto`` works (Odoo's ``base`` imports it), and the addon's sync core
   imports and encrypts a token with the installed ``cryptography``;
4. with the first Python only (the one CI's Odoo stages use): ``odoo-bin -i
   impact_calendar_integration`` on a new database, which must exit 0 with no ERROR or
   CRITICAL line and no WARNING about the addon.

Where Odoo's own requirements do not build with a Python other than the first (Odoo's 3.10
pins do not, here), the stage checks only that pip's resolver finds the addon's libraries within
Odoo's pins for that Python, and remembers the failed build so as not to pay for it on every run.

Prints the ``pip freeze`` difference and ``install-SERIES: N passed, N failed`` (one per check).
Pythons outside Odoo's MIN_PY_VERSION..MAX_PY_VERSION are left out. Reuses the Odoo
source that ``tools/odoo_env.py`` unpacks, and pip's cache. Standard library only.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import odoo_env  # noqa: E402  pylint: disable=wrong-import-position
import odoo_stage  # noqa: E402  pylint: disable=wrong-import-position

README = os.path.join(odoo_env.REPO, "README.md")
STEP = re.compile(r"<!-- install-step-1(?::[^>]*)? -->(?P<body>.*?)<!-- /install-step-1 -->", re.S)
ADDON = "impact_calendar_integration"
SMOKE = """
import sys
sys.path.insert(0, "tools")
import addon_path
addon_path.register()
import pkgutil, importlib
import impact_calendar_integration.sync as sync
for module in pkgutil.walk_packages(sync.__path__, "impact_calendar_integration.sync."):
    importlib.import_module(module.name)
from impact_calendar_integration.sync.vault import Vault, generate_key
vault = Vault([generate_key(), "a passphrase"])
assert vault.decrypt(vault.encrypt("refresh-token")) == "refresh-token"
"""


class OdooRequirementsError(odoo_env.EnvError):
    """Odoo's own requirements.txt does not install with this Python on this machine."""


def unbuildable_mark(python, odoo_dir):
    """A file marking that Odoo's requirements failed to build with this Python here (an
    extra Python's failure is Odoo's, not the addon's: it is left out, and not tried on every
    run, since a failed build of Odoo's sdists costs minutes)."""
    version = subprocess.run([python, "-VV"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256("\n".join([version, *odoo_env._requirements(odoo_dir)]).encode()).hexdigest()[:16]  # pylint: disable=protected-access
    return os.path.join(odoo_env.CACHE, f"odoo-requirements-unbuildable-{key}")


def readme_step():
    """The README's step-1 commands, one per line, as written there."""
    with open(README, encoding="utf-8") as handle:
        found = STEP.search(handle.read())
    if not found:
        raise odoo_env.EnvError("README.md has no <!-- install-step-1 --> block")
    return [line.strip() for line in found["body"].splitlines() if line.strip()]


def freeze(python):
    done = subprocess.run([python, "-m", "pip", "list", "--format=freeze"],
                          capture_output=True, text=True, check=True)
    return dict(line.split("==", 1) for line in done.stdout.split() if "==" in line)


def python_version(python):
    done = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                          capture_output=True, text=True, check=False)
    return tuple(int(part) for part in done.stdout.split()) if done.returncode == 0 else None


def supported(odoo_dir):
    """Odoo's (MIN_PY_VERSION, MAX_PY_VERSION): in odoo/release.py (19.0) or odoo/__init__.py
    (18.0), read without importing Odoo."""
    for name in ("release.py", "__init__.py"):
        with open(os.path.join(odoo_dir, "odoo", name), encoding="utf-8") as handle:
            text = handle.read()
        found = {key: tuple(int(part) for part in value.split(","))
                 for key, value in re.findall(r"^(MIN|MAX)_PY_VERSION = \(([\d, ]+)\)", text, re.M)}
        if len(found) == 2:
            return found["MIN"], found["MAX"]
    raise odoo_env.EnvError("Odoo's MIN_PY_VERSION / MAX_PY_VERSION not found")


def pythons_here():
    """python3 first (CI's Odoo stages use it), then every other CPython the machine has: on
    PATH as python3.X, or installed by pyenv."""
    found = ["python3"]
    for minor in range(8, 20):
        if shutil.which(f"python3.{minor}"):
            found.append(f"python3.{minor}")
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip() \
        if shutil.which("pyenv") else ""
    versions = os.path.join(root, "versions") if root else ""
    if versions and os.path.isdir(versions):
        found += sorted(os.path.join(versions, name, "bin", "python3") for name in os.listdir(versions)
                        if os.path.isfile(os.path.join(versions, name, "bin", "python3")))
    return found


def quiet(output):
    """pip's output without this machine's "Location ... is ignored" noise."""
    return "\n".join(line for line in output.splitlines() if not line.startswith("WARNING: Location '"))


def odoo_venv(python, odoo_dir, where):
    """A new virtualenv holding Odoo's requirements.txt alone: what a user has before step 1."""
    venv = os.path.join(where, "venv")
    subprocess.run([python, "-m", "venv", venv], check=True)
    requirements = os.path.join(where, "odoo-requirements.txt")
    with open(requirements, "w", encoding="utf-8") as handle:
        handle.write("\n".join(odoo_env._requirements(odoo_dir)) + "\n")  # pylint: disable=protected-access
    env = dict(os.environ, PIP_CONSTRAINT=odoo_env.build_constraints(where), PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet", "-r", requirements],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise OdooRequirementsError(f"Odoo's requirements did not install:\n{quiet(done.stdout + done.stderr)[-3000:]}")
    return venv


def run_step(venv, commands):
    """Run the README's commands as a user would, in a shell with the virtualenv active."""
    env = dict(os.environ, VIRTUAL_ENV=venv, PATH=f"{os.path.join(venv, 'bin')}:{os.environ['PATH']}",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PIP_CONSTRAINT", None)  # a user's shell has none; ours must not help
    script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
    before = set(os.listdir(odoo_env.REPO))
    try:
        return subprocess.run(["bash", "-c", script], cwd=odoo_env.REPO, env=env,
                              capture_output=True, text=True, check=False)
    finally:
        for name in set(os.listdir(odoo_env.REPO)) - before:  # odoo-pins.txt: leave the clone clean
            if os.path.isfile(os.path.join(odoo_env.REPO, name)):
                os.remove(os.path.join(odoo_env.REPO, name))


def install_addon(series, python, odoo_dir, log_path):
    """odoo-bin -i the addon on a new database: (exit code, problems)."""
    database = f"impact_install_{series.replace('.', '')}_{os.getpid()}"
    command = [
        python, os.path.join(odoo_dir, "odoo-bin"),
        f"--addons-path={odoo_env.addons_path(odoo_dir, odoo_env.REPO)}",
        *odoo_env.postgres(), "-d", database, "-i", ADDON, "--stop-after-init",
        f"--http-port={odoo_stage.free_port()}", "--max-cron-threads=0", "--log-level=info",
        *odoo_env.series_options(series),
    ]
    odoo_env.drop_database(database)
    try:
        with open(log_path, "w", encoding="utf-8") as log_file:
            code = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, check=False).returncode
    finally:
        odoo_env.drop_database(database)
    problems = []
    with open(log_path, encoding="utf-8") as handle:
        for line in handle:
            record = odoo_stage.RECORD.match(line)
            if not record:
                continue
            if record["level"] in ("ERROR", "CRITICAL"):
                problems.append(line.rstrip())
            elif record["level"] == "WARNING" and (ADDON in record["logger"] or ADDON in record["message"]):
                problems.append(line.rstrip())
    return code, problems


class Checks:
    def __init__(self, label):
        self.label, self.passed, self.failed = label, 0, 0

    def __call__(self, name, ok, detail=""):
        print(f"[{self.label}] {'ok  ' if ok else 'FAIL'} {name}{f': {detail}' if detail else ''}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def check_python(series, python, odoo_dir, checks, with_odoo, log_dir):
    commands = readme_step()
    with tempfile.TemporaryDirectory(dir=odoo_env.CACHE) as where:
        venv = odoo_venv(python, odoo_dir, where)
        venv_python = os.path.join(venv, "bin", "python")
        before = freeze(venv_python)
        done = run_step(venv, commands)
        checks("README step 1 ran", done.returncode == 0,
               " && ".join(commands) if done.returncode == 0 else quiet(done.stdout + done.stderr)[-3000:])
        after = freeze(venv_python)
        moved = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
        added = sorted(f"{name}=={version}" for name, version in after.items() if name not in before)
        print(f"[{checks.label}] pip freeze: {len(before)} packages before, {len(added)} added: {' '.join(added)}")
        checks("no package of Odoo's environment changed version", not moved,
               ", ".join(f"{name} {old} -> {new}" for name, (old, new) in sorted(moved.items())))
        pip_check = subprocess.run([venv_python, "-m", "pip", "check"], capture_output=True, text=True, check=False)
        checks("pip check", pip_check.returncode == 0, quiet(pip_check.stdout + pip_check.stderr).strip())
        openssl = subprocess.run([venv_python, "-c", "from OpenSSL import crypto"],
                                 capture_output=True, text=True, check=False)
        checks("from OpenSSL import crypto", openssl.returncode == 0, openssl.stderr.strip()[-500:])
        smoke = subprocess.run([venv_python, "-c", SMOKE], cwd=odoo_env.REPO, capture_output=True, text=True, check=False)
        checks("the sync core imports and encrypts", smoke.returncode == 0, smoke.stderr.strip()[-1500:])
        if with_odoo:
            log_path = os.path.join(log_dir, f"install-{series}.log")
            code, problems = install_addon(series, venv_python, odoo_dir, log_path)
            checks(f"odoo-bin -i {ADDON}", code == 0 and not problems,
                   f"exit {code}; " + "; ".join(problems[:5]) + f" (log: {log_path})" if code or problems else "")


def check_resolution(python, odoo_dir, checks):
    """Where Odoo's own requirements do not build: pip's resolver alone, in a new virtualenv,
    with Odoo's requirements.txt as constraints (its pins for this Python), must find versions of
    the addon's libraries that leave them as they are. Nothing is installed (--dry-run)."""
    with tempfile.TemporaryDirectory(dir=odoo_env.CACHE) as where:
        venv = os.path.join(where, "venv")
        subprocess.run([python, "-m", "venv", venv], check=True)
        pins = os.path.join(where, "odoo-requirements.txt")
        with open(pins, "w", encoding="utf-8") as handle:
            handle.write("\n".join(odoo_env._requirements(odoo_dir)) + "\n")  # pylint: disable=protected-access
        done = subprocess.run(
            [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
             "-r", os.path.join(odoo_env.REPO, "requirements.txt"), "-c", pins],
            capture_output=True, text=True, check=False, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"),
        )
    if done.returncode:
        checks("the addon's libraries resolve within Odoo's pins", False, quiet(done.stderr)[-2000:])
        return
    chosen = sorted(f"{item['metadata']['name']}=={item['metadata']['version']}"
                    for item in json.loads(done.stdout)["install"])
    checks("the addon's libraries resolve within Odoo's pins", True, " ".join(chosen))


def main(argv):
    if not argv:
        sys.exit(__doc__)
    series, pythons = argv[0], argv[1:] or pythons_here()
    checks = Checks(f"install-{series}")
    log_dir = os.environ.get("ODOO_STAGE_LOGS") or os.path.join(odoo_env.CACHE, "logs")
    os.makedirs(log_dir, exist_ok=True)
    try:
        with odoo_env.cache_lock():
            odoo_dir = odoo_env.odoo_source(series)
        lowest, highest = supported(odoo_dir)
        first, seen = True, set()
        for python in pythons:
            version = python_version(shutil.which(python) or python)
            if version in seen:
                continue
            if not version or not lowest <= version <= highest:
                continue  # not a Python, or one that Odoo does not support
            seen.add(version)
            checks.label = f"install-{series} py{version[0]}.{version[1]}"
            mark = unbuildable_mark(python, odoo_dir)
            if first or not os.path.exists(mark):
                try:
                    check_python(series, python, odoo_dir, checks, first, log_dir)
                    first = False
                    continue
                except OdooRequirementsError as exc:
                    if first:
                        raise
                    with open(mark, "w", encoding="utf-8") as handle:
                        handle.write(str(exc))
            print(f"[{checks.label}] Odoo's own requirements.txt does not build with this Python here "
                  f"(pip's output: {mark}); checking the resolution only")
            check_resolution(python, odoo_dir, checks)
    except odoo_env.EnvError as exc:
        checks("environment", False, str(exc))
    print(f"install-{series}: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed or not checks.passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
