"""Import the addon's pure-Python parts without Odoo: the sync core and the test emulators.

Registers bare ``impact_calendar_integration`` and ``impact_calendar_integration.tests``
packages whose ``__path__`` is the folder, so that ``impact_calendar_integration.sync`` and
``impact_calendar_integration.tests.emulators`` import without running the ``__init__`` files
(which import Odoo). Used by the repository's conftest.py, the demos and the benchmarks.
"""

import os
import sys
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON = "impact_calendar_integration"


def register():
    for name, folder in ((ADDON, ADDON), (f"{ADDON}.tests", os.path.join(ADDON, "tests"))):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(REPO, folder)]
            sys.modules[name] = package
