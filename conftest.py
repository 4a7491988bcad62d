"""pytest without Odoo: make ``impact_calendar_integration.sync`` importable without running the
addon's ``__init__`` (which imports Odoo models), and put ``tests/`` on the path for the emulators."""

import os
import sys
import types

ROOT = os.path.dirname(os.path.abspath(__file__))
ADDON = os.path.join(ROOT, "impact_calendar_integration")

if "impact_calendar_integration" not in sys.modules:
    package = types.ModuleType("impact_calendar_integration")
    package.__path__ = [ADDON]
    sys.modules["impact_calendar_integration"] = package
sys.path.insert(0, os.path.join(ROOT, "tests"))
