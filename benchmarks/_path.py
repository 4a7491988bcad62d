"""Import helper for the no-Odoo benchmarks (same trick as the repository's conftest.py).

Registers a bare ``impact_calendar_integration`` package whose ``__path__`` is the addon folder,
so ``impact_calendar_integration.sync`` imports without running the addon's ``__init__`` (which
imports Odoo), and puts ``tests/`` on ``sys.path`` for the loopback emulators and ``pg.py``.
"""

import os
import platform
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON = os.path.join(ROOT, "impact_calendar_integration")
TESTS = os.path.join(ROOT, "tests")

if "impact_calendar_integration" not in sys.modules:
    _package = types.ModuleType("impact_calendar_integration")
    _package.__path__ = [ADDON]
    sys.modules["impact_calendar_integration"] = _package
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)


def machine():
    """One line describing where the figures come from."""
    return f"{platform.node()} | {os.cpu_count()} cores | Python {platform.python_version()} | {platform.platform()}"
