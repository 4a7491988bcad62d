# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What differs between Odoo 18.0 and 19.0, named, for the rest of the addon.

Renamed fields are keyed on the major version (``>= 19``), changed APIs on the API itself,
so that a later series keeps the 19.0 side until it changes again; porting to 20.0 means
adding its differences here.
"""

import threading

from odoo import models
from odoo.modules import module as odoo_module
from odoo.release import version_info

try:  # 19.0: call_kw moved to odoo.service.model, and refuses private methods itself
    from odoo.service.model import call_kw as _call_kw

    _check_method_name = None
except ImportError:  # 18.0: the web controller checks the name, then calls odoo.api.call_kw
    from odoo.api import call_kw as _call_kw
    from odoo.models import check_method_name as _check_method_name

# 19.0: a model declares SQL constraints as ``models.Constraint`` attributes; a
# ``_sql_constraints`` attribute is only warned about, and the constraint not created.
MODEL_CONSTRAINTS = hasattr(models, "Constraint")

# 19.0: res.users.groups_id -> group_ids, res.groups.users -> user_ids,
# ir.actions.*.groups_id -> group_ids.
USER_GROUPS = "group_ids" if version_info[0] >= 19 else "groups_id"
GROUP_USERS = "user_ids" if version_info[0] >= 19 else "users"
ACTION_GROUPS = USER_GROUPS

# 19.0: groups belong to a res.groups.privilege (which holds the module category),
# not to the category directly.
PRIVILEGES = version_info[0] >= 19


# The loggers that write a line per HTTP request, with its path: on both series werkzeug's
# request handler (Odoo's RequestHandler / 19.0's CommonRequestHandler.log_request call
# ``self.log("info", '"%s" %s %s', ...)``, i.e. the ``werkzeug`` logger); ``odoo.http`` logs
# failed requests.
REQUEST_LOGGERS = ("werkzeug", "odoo.http")


def sql_constraints(*constraints):
    """Class attributes declaring ``(name, definition, message)`` SQL constraints, for
    ``locals().update(...)`` in a model's class body. The database name is the same on
    both series (``<table>_<name>``), so an upgrade keeps the constraint."""
    if not MODEL_CONSTRAINTS:
        return {"_sql_constraints": list(constraints)}
    return {f"_{name}": models.Constraint(definition, message) for name, definition, message in constraints}


def groups_field(model_name):
    """The many2many to res.groups on res.users and ir.actions.*."""
    return USER_GROUPS if model_name == "res.users" else ACTION_GROUPS


def set_groups_category(groups, category, privilege_xmlid):
    """File ``groups`` under the module ``category``: directly on 18.0, through a
    privilege (created with ``privilege_xmlid``, so it is updated and uninstalled with the
    addon) on 19.0."""
    if not PRIVILEGES:
        groups.write({"category_id": category.id})
        return
    privilege = groups.env["res.groups.privilege"]._load_records(
        [{
            "xml_id": privilege_xmlid,
            "values": {"name": category.name, "category_id": category.id, "sequence": category.sequence},
            "noupdate": False,
        }]
    )
    groups.write({"privilege_id": privilege.id})


def testing():
    """Whether Odoo is running tests (whose transaction must not be committed): 18.0 marks
    the test thread, 19.0 only keeps the running test in ``odoo.modules.module``."""
    if version_info[0] < 19:
        return getattr(threading.current_thread(), "testing", False)
    return bool(odoo_module.current_test)


def rpc_call_kw(model, name, args, kwargs):
    """What /web/dataset/call_kw runs (private methods refused)."""
    if _check_method_name:
        _check_method_name(name)
    return _call_kw(model, name, args, kwargs)


def cron_progress(env, processed, done, remaining):
    """Tell the running cron how far it got; nothing outside a cron run (as on 18.0).

    19.0's ``_commit_progress`` also commits (a cron reporting remaining work is run again);
    18.0's ``_notify_progress`` is deprecated there."""
    if not env.context.get("ir_cron_progress_id"):
        return
    cron = env["ir.cron"]
    if hasattr(cron, "_commit_progress"):
        cron._commit_progress(processed, remaining=remaining)
    else:
        cron._notify_progress(done=done, remaining=remaining)
