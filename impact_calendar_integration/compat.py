# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Every Odoo internal the addon relies on that may change between series: the 20.0-port
checklist. Renamed fields and changed APIs of 18.0 and 19.0 are named here, and so are the
internals both series share but do not promise to keep (the ``ir_cron_trigger`` table, the
cron threads' wake-up in ``ir.cron._notifydb``, ``cr.precommit.data``, the ``in_group_`` and
``sel_groups_`` keys of a user's form). The rest of the addon uses these names only.

Renamed fields are keyed on the major version (``>= 19``), changed APIs on the API itself,
so that a later series keeps the 19.0 side until it changes again; porting to 20.0 means
checking each entry below and adding its differences here.
"""

import threading

from odoo import models
from odoo.addons.base.models.ir_cron import ODOO_NOTIFY_FUNCTION
from odoo.modules import module as odoo_module
from odoo.release import version_info
from odoo.tools import SQL

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


# -- a user's groups in a form's values ----------------------------------------------------------
# 18.0 and 19.0: the user form writes groups through virtual fields named after them (a checkbox
# ``in_group_<id>``, a selection ``sel_groups_<ids>``) besides the many2many itself.
GROUP_FIELD_PREFIXES = ("in_group_", "sel_groups_")


def writes_user_groups(vals):
    """Whether ``vals``, written on res.users, may change the users' groups."""
    return USER_GROUPS in vals or any(key.startswith(GROUP_FIELD_PREFIXES) for key in vals)


# -- the transaction's hooks -----------------------------------------------------------------------
def precommit_data(cr):
    """A dict that lives as long as the transaction, for its precommit hooks (``cr.precommit``
    is a ``Callbacks`` whose ``data`` is cleared with it)."""
    return cr.precommit.data


# -- scheduled actions: triggers and the cron threads' wake-up -------------------------------------
# Both series: a trigger is an ``ir_cron_trigger`` row (cron_id, call_at, naive UTC) that the
# cron threads compare with the database's clock; ``ir.cron._notifydb`` wakes them with
# ``SELECT <ODOO_NOTIFY_FUNCTION>('cron_trigger', <dbname>)``.
CRON_NOTIFY_FUNCTION = ODOO_NOTIFY_FUNCTION
CRON_NOTIFY_CHANNEL = "cron_trigger"


def drop_cron_triggers(cr, cron_id, since, while_empty):
    """Delete ``cron_id``'s triggers due from ``since`` to the database's now, provided the
    table ``while_empty`` has no row: in one statement, so one snapshot decides both."""
    cr.execute(SQL(
        """DELETE FROM ir_cron_trigger
            WHERE cron_id = %s AND call_at >= %s AND call_at <= (statement_timestamp() AT TIME ZONE 'UTC')
              AND NOT EXISTS (SELECT 1 FROM %s)""",
        cron_id, since, SQL.identifier(while_empty),
    ))


class CronNotifyOverride:
    """Mixed into ``ir.cron`` (models/ir_cron.py): ``_notifydb`` is the method both series
    call, after commit, to wake the cron threads; ``_impact_calendar_notify`` sends the
    wake-up itself when it can (True), else Odoo does."""

    __slots__ = ()  # a model's instances have a fixed layout (BaseModel.__slots__)

    def _notifydb(self):
        if self._impact_calendar_notify():
            return None
        return super()._notifydb()


def notify_cron_after_commit(cron, unless=None):
    """Wake the cron threads once the transaction is committed, as ``ir.cron._trigger`` does,
    unless ``unless()`` then says that none needs it."""
    def wake():
        if not (unless and unless()):
            cron._notifydb()

    cron.env.cr.postcommit.add(wake)
