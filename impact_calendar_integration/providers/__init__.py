"""The Odoo side of each provider: its view fragments (listed in the manifest), its connect
action and, for a provider connected by a form, the form. The pure side (client, OAuth, ids,
body, settings declaration) lives in ``sync/providers/<name>/``; both are discovered."""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if _info.ispkg:
        importlib.import_module(f"{__name__}.{_info.name}")
