"""Import helper for the no-Odoo benchmarks (same trick as the repository's conftest.py).

Makes ``impact_calendar_integration.sync`` and ``impact_calendar_integration.tests.emulators``
importable without Odoo (``tools/addon_path.py``), and puts ``tests/`` on ``sys.path`` for
``pg.py``.
"""

import os
import platform
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")

sys.path.insert(0, os.path.join(ROOT, "tools"))
import addon_path  # noqa: E402  pylint: disable=wrong-import-position

addon_path.register()
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)


def machine():
    """One line describing where the figures come from."""
    return f"{platform.node()} | {os.cpu_count()} cores | Python {platform.python_version()} | {platform.platform()}"
