"""pytest without Odoo: import the addon's sync core and its test emulators without running the
addon's ``__init__`` (which imports Odoo models); ``tests/`` holds helpers such as ``pg.py``."""

import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import addon_path  # noqa: E402  pylint: disable=wrong-import-position

addon_path.register()
