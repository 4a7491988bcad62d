#!/usr/bin/env python3
"""Validate an Odoo 18 addon's XML data files the way Odoo does when it installs the addon.

- Every ``.xml`` file listed in ``__manifest__.py`` under ``data`` and ``demo`` is checked
  against ``import_xml.rng``, as ``odoo/tools/convert.py:convert_xml_import`` does
  (``relaxng.assert_(doc)`` on the whole parsed file).
- Every ``<record model="ir.ui.view">`` whose arch root is list, search, calendar, graph, pivot
  or activity is checked against ``<type>_view.rng``, as ``odoo/tools/view_validation.py``
  (``schema_valid``) does from ``ir.ui.view._check_xml``. Odoo validates the *combined* arch
  (the view with its inheriting views applied), so views that inherit another view
  (``inherit_id`` set) are skipped: their parent is not available here. A ``<data>`` arch
  root is unwrapped, and ``__validate__`` attributes removed, as in ``_check_xml``.

Form and kanban views are checked by Odoo against the model registry; only a real install
catches those.

The schemas come from ``../shared/odoo18-rng`` beside the repository (or ``--rng-dir``);
when that folder is absent the check prints ``skipped: ...`` and exits 0.

Usage: validate_odoo_xml.py [--rng-dir DIR] [ADDON_DIR ...]
(default addon: ``impact_calendar_integration`` in the repository root)
"""

import argparse
import ast
import copy
import os
import sys

from lxml import etree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ADDONS = [os.path.join(REPO, "impact_calendar_integration")]
DEFAULT_RNG_DIR = os.path.join(os.path.dirname(REPO), "shared", "odoo18-rng")
MANIFEST_KEYS = ("data", "demo")
# view types for which odoo/tools/view_validation.py registers ``schema_valid``
RNG_VIEW_TYPES = ("list", "search", "calendar", "graph", "pivot", "activity")


class Schemas:
    """Lazily loaded RelaxNG validators from one folder."""

    def __init__(self, rng_dir):
        self.rng_dir = rng_dir
        self._cache = {}

    def get(self, name):
        if name not in self._cache:
            path = os.path.join(self.rng_dir, name)
            # parse from the path so that <include href="common.rng"/> resolves beside it
            self._cache[name] = etree.RelaxNG(etree.parse(path))
        return self._cache[name]


def read_manifest(addon_dir):
    path = os.path.join(addon_dir, "__manifest__.py")
    with open(path, encoding="utf-8") as handle:
        return ast.literal_eval(handle.read())


def _format_errors(validator, path):
    return [f"{path}:{error.line}: {error.message}" for error in validator.error_log]


def _top_level_nodes(root):
    """(wrapper builder, node) for each data node: root children, and <data> children."""
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "data" and root.tag != "data":
            for grandchild in child:
                if isinstance(grandchild.tag, str):
                    yield (root, child), grandchild
        else:
            yield (root,), child


def _locate_import_errors(doc, validator, path):
    """libxml2 reports a bad node as "Element odoo has extra content: <first node>"; validate
    each data node alone inside copies of its parents to name the one(s) at fault."""
    lines = []
    for parents, node in _top_level_nodes(doc.getroot()):
        wrapper = inner = etree.Element(parents[0].tag, dict(parents[0].attrib))
        for parent in parents[1:]:
            inner = etree.SubElement(inner, parent.tag, dict(parent.attrib))
        inner.append(copy.deepcopy(node))
        if not validator.validate(wrapper):
            lines.append(f"{path}:{node.sourceline}: <{node.tag} id={node.get('id')!r}> is invalid:")
            lines.extend("    " + line for line in _format_errors(validator, path))
    return lines


def _own_view_archs(record):
    """Arch roots of a non-inheriting ir.ui.view record, as _check_xml validates them."""
    if record.find("field[@name='inherit_id']") is not None:
        return None
    arch_field = record.find("field[@name='arch']")
    if arch_field is None:
        return []
    roots = [child for child in arch_field if isinstance(child.tag, str)]
    if len(roots) == 1 and roots[0].tag == "data":
        roots = [child for child in roots[0] if isinstance(child.tag, str)]
    archs = []
    for root in roots:
        arch = copy.deepcopy(root)  # keeps source line numbers
        for node in arch.xpath("//*[@__validate__]"):
            del node.attrib["__validate__"]
        archs.append(arch)
    return archs


def validate_file(path, schemas):
    """Return (errors, views_checked, views_skipped) for one data file."""
    errors = []
    try:
        doc = etree.parse(path)
    except etree.XMLSyntaxError as exc:
        return [f"{path}: XML syntax error: {exc}"], 0, 0

    import_rng = schemas.get("import_xml.rng")
    if not import_rng.validate(doc):
        whole = _format_errors(import_rng, path)
        errors.append(f"{path}: does not fit import_xml.rng (Odoo refuses to install it):")
        errors.extend("  " + line for line in _locate_import_errors(doc, import_rng, path) or whole)

    checked = skipped = 0
    for record in doc.iter("record"):
        if record.get("model") != "ir.ui.view":
            continue
        archs = _own_view_archs(record)
        if archs is None:
            skipped += 1
            continue
        for arch in archs:
            if arch.tag not in RNG_VIEW_TYPES:
                continue
            checked += 1
            validator = schemas.get(f"{arch.tag}_view.rng")
            if not validator.validate(arch):
                where = f"{path}:{record.sourceline}"
                errors.append(
                    f"{where}: view {record.get('id')!r} ({arch.tag}) does not fit "
                    f"{arch.tag}_view.rng:"
                )
                errors.extend("  " + line for line in _format_errors(validator, path))
    return errors, checked, skipped


def validate_addon(addon_dir, schemas):
    errors = []
    files = views = inheriting = 0
    try:
        manifest = read_manifest(addon_dir)
    except FileNotFoundError:
        return [f"{addon_dir}: no __manifest__.py"], (0, 0, 0)
    except (SyntaxError, ValueError) as exc:
        return [f"{addon_dir}/__manifest__.py: not a literal dict: {exc}"], (0, 0, 0)
    for key in MANIFEST_KEYS:
        for rel in manifest.get(key, []):
            path = os.path.join(addon_dir, rel)
            if not os.path.isfile(path):
                errors.append(f"{addon_dir}/__manifest__.py: {key!r} lists missing file {rel}")
                continue
            if not rel.lower().endswith(".xml"):
                continue
            file_errors, checked, skipped = validate_file(path, schemas)
            errors.extend(file_errors)
            files += 1
            views += checked
            inheriting += skipped
    return errors, (files, views, inheriting)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("addons", nargs="*", default=DEFAULT_ADDONS)
    parser.add_argument("--rng-dir", default=DEFAULT_RNG_DIR)
    args = parser.parse_args(argv)

    if not os.path.isfile(os.path.join(args.rng_dir, "import_xml.rng")):
        print(f"skipped: ../shared/odoo18-rng not found (looked in {args.rng_dir})")
        return 0

    schemas = Schemas(args.rng_dir)
    all_errors = []
    for addon in args.addons:
        errors, (files, views, inheriting) = validate_addon(addon, schemas)
        all_errors.extend(errors)
        print(
            f"{os.path.basename(os.path.abspath(addon))}: {files} XML data files, "
            f"{views} list/search/calendar/graph/pivot/activity archs validated, "
            f"{inheriting} inheriting views not validated (need their parent), "
            f"{sum(not line.startswith(' ') for line in errors)} errors"
        )
    for line in all_errors:
        print(line)
    return 1 if all_errors else 0


if __name__ == "__main__":
    sys.exit(main())
