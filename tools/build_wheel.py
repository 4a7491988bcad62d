#!/usr/bin/env python3
"""Build the addon's wheel for one Odoo series with whool:

    python tools/build_wheel.py SERIES [WHEEL_DIR]      (e.g. 18.0 dist/)

The manifest's version has 3 parts (``1.0.0``) so that one folder installs on 18.0 and 19.0;
whool reads the series from a 5-part version, or from ``[tool.whool] odoo_series_override``
(it has no environment variable for it). A wheel's ``Requires-Dist: odoo==<series>.*`` holds one
series, so there is one wheel per series, versioned ``<series>.<manifest version>[.N]`` as OCA
does (``N``: commits since the version changed). This exports the addon's git files like an
sdist (a ``PKG-INFO`` giving name and version, the series in ``pyproject.toml``) and lets whool
build the wheel from it. Needs a Python with whool (requirements-test.txt); prints the wheel path.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from manifestoo_core.metadata import metadata_from_addon_dir

REPO = Path(__file__).resolve().parent.parent
ADDON = "impact_calendar_integration"


def build(series, wheel_dir):
    addon_dir = REPO / ADDON
    options = {"odoo_series_override": series}
    metadata = metadata_from_addon_dir(addon_dir, options)  # git post-version, as whool does
    version = f"{series}.{metadata['Version']}"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=addon_dir, capture_output=True, check=True
    ).stdout.decode().split("\0")
    with tempfile.TemporaryDirectory() as tmp:
        sdist = Path(tmp) / ADDON
        for name in filter(None, files):
            (sdist / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(addon_dir / name, sdist / name)
        (sdist / "PKG-INFO").write_text(
            f"Metadata-Version: 2.1\nName: {metadata['Name']}\nVersion: {version}\n", encoding="utf-8"
        )
        pyproject = (sdist / "pyproject.toml").read_text(encoding="utf-8")
        if "[tool.whool]" in pyproject:
            sys.exit("pyproject.toml has a [tool.whool] table: add odoo_series_override there")
        (sdist / "pyproject.toml").write_text(
            f'{pyproject}\n[tool.whool]\nodoo_series_override = "{series}"\n', encoding="utf-8"
        )
        os.makedirs(wheel_dir, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "--no-index", "-w", str(wheel_dir), str(sdist)],
            check=True,
        )
    name = metadata["Name"].replace("-", "_")
    return Path(wheel_dir) / f"{name}-{version}-py3-none-any.whl"


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    wheel = build(sys.argv[1], Path(sys.argv[2] if len(sys.argv) == 3 else "dist").resolve())
    if not wheel.is_file():
        sys.exit(f"whool did not make {wheel}")
    print(wheel)
