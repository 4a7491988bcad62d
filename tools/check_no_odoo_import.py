#!/usr/bin/env python3
"""Fail if the pure sync core imports Odoo, directly or through the addon package.

Walks the AST of every ``.py`` file under ``impact_calendar_integration/sync/`` (or the
folders given) and reports:
- ``import odoo`` / ``from odoo... import ...`` (and ``openerp``);
- ``__import__("odoo...")`` / ``importlib.import_module("odoo...")`` with a literal name;
- imports of ``impact_calendar_integration`` outside ``sync``, and relative imports that climb
  out of ``sync/``: both run the addon's ``__init__``, which imports the Odoo models;
- absolute imports of ``impact_calendar_integration.sync``: they work under pytest (the
  repo-root conftest.py registers that name) but not under Odoo, where the addon is
  ``odoo.addons.impact_calendar_integration``; the core imports itself relatively.

Usage: check_no_odoo_import.py [SYNC_DIR ...]
"""

import ast
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON_NAME = "impact_calendar_integration"
DEFAULT_DIRS = [os.path.join(REPO, ADDON_NAME, "sync")]
FORBIDDEN_ROOTS = ("odoo", "openerp")
DYNAMIC_IMPORTERS = ("__import__", "import_module")


def _forbidden_module(name, addon_name):
    """Why importing the absolute module ``name`` from the core is forbidden, or None."""
    parts = name.split(".")
    if parts[0] in FORBIDDEN_ROOTS:
        return f"imports {name}"
    if parts[0] == addon_name:
        if parts[1:2] != ["sync"]:
            return f"imports {name}, which runs the addon's __init__ (Odoo models)"
        return (
            f"imports {name} absolutely: under Odoo the addon is odoo.addons.{addon_name}, "
            "so use a relative import"
        )
    return None


def _call_name(func):
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def check_file(path, sync_dir, addon_name):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=path)
    # package depth below sync/: sync/x.py -> 0, sync/providers/y.py -> 1
    rel_dir = os.path.relpath(os.path.dirname(path), sync_dir)
    depth = 0 if rel_dir == "." else len(rel_dir.split(os.sep))
    problems = []
    for node in ast.walk(tree):
        reasons = []
        if isinstance(node, ast.Import):
            reasons = [_forbidden_module(alias.name, addon_name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > depth + 1:
                    reasons = [f"relative import (level {node.level}) climbs out of sync/"]
            elif node.module:
                reasons = [_forbidden_module(node.module, addon_name)]
        elif isinstance(node, ast.Call) and _call_name(node.func) in DYNAMIC_IMPORTERS:
            if node.args and isinstance(node.args[0], ast.Constant):
                value = node.args[0].value
                if isinstance(value, str) and not value.startswith("."):
                    reasons = [_forbidden_module(value, addon_name)]
        problems.extend(f"{path}:{node.lineno}: {reason}" for reason in reasons if reason)
    return problems


def main(argv=None):
    dirs = (argv if argv is not None else sys.argv[1:]) or DEFAULT_DIRS
    problems = []
    count = 0
    for sync_dir in dirs:
        if not os.path.isdir(sync_dir):
            problems.append(f"{sync_dir}: not a directory")
            continue
        for folder, subdirs, files in os.walk(sync_dir):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    count += 1
                    problems.extend(
                        check_file(os.path.join(folder, name), sync_dir, ADDON_NAME)
                    )
    for line in problems:
        print(line)
    print(f"{count} files under sync/ checked, {len(problems)} Odoo imports found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
