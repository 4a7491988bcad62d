# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Security sweep over real JSON-RPC: what other users can do to, and learn about, an instructor.

Every public model method is callable over RPC by any logged-in user on any ids, so the sweep
discovers the addon's methods and fields from the registry: a method or field added later is
covered without editing this file.
"""

import inspect
import json
import re
import time
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from odoo import Command
from odoo.http import root
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL, mute_logger

from ..controllers import main as routes
from ..sync.tokens import TokenSet
from .common import GROUP, connect_offline, make_user, start_emulators

ADDON = "impact_calendar_integration"
ADDON_PACKAGE = "odoo.addons." + ADDON


def addon_public_methods(registry):
    """(model, method) for every public method the addon adds to any model, ``res.users`` included.

    Overrides of methods that a class outside the addon defines (``create``, ``write``...) are
    left out: their access is the base method's (ACLs, record rules), not the addon's.
    """
    found = []
    for model_name in sorted(registry):
        mro = registry[model_name].__mro__
        own = {cls for cls in mro if cls.__module__.startswith(ADDON_PACKAGE)}
        inherited = {name for cls in mro if cls not in own for name in vars(cls)}
        names = {
            name
            for cls in own
            for name, value in vars(cls).items()
            if not name.startswith("_") and inspect.isfunction(value) and name not in inherited
        }
        found.extend((model_name, name) for name in sorted(names))
    return found


def addon_user_fields(registry):
    fields = registry["res.users"]._fields
    return sorted(
        name for name, field in fields.items() if field._module == ADDON or name.startswith("impact_calendar")
    )


def addon_models(registry):
    """Every model the addon defines, wizards included (not abstract ones): a transient record
    has no owner rule unless the addon writes one, and a saved form may hold a password."""
    return sorted(
        name for name in registry if registry[name]._original_module == ADDON and not registry[name]._abstract
    )


# What instructor A types into any form of the addon (each form takes the fields it has).
SECRET = "sweep-app-password"
FORM_VALUES = {
    "server_preset": "other",
    "server_url": "http://127.0.0.1:9/",
    "username": "sweep_instructor@icloud.example",
    "password": SECRET,
}
# A field whose name says it holds a secret is never readable, not even by its owner (a
# payload's pushed_hash or a lease's claim_token are not secrets).
SECRET_FIELD = re.compile(r"password|secret|token_hash|access_token|refresh_token", re.IGNORECASE)


@tagged("post_install", "-at_install")
class TestRpcSweep(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        start_emulators(cls)

        # Instructor A: connected with real emulator tokens, one booked class pushed.
        cls.instructor = make_user(cls.env, "sweep_instructor")
        cls.instructor.password = "sweep_instructor-Passw0rd"
        cls.instructor_email = "sweep_instructor@gmail.example"
        access, refresh = cls.google.issue_tokens(cls.instructor_email)
        tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3000)
        cls.account = connect_offline(cls.instructor, email=cls.instructor_email, tokens=tokens)
        student = cls.env["res.partner"].create({"name": "Sweep Student", "email": "sweep.student@example.com"})
        start = datetime.now().replace(microsecond=0, second=0, minute=0) + timedelta(days=3)
        cls.event = cls.env["calendar.event"].with_user(cls.instructor).create({
            "name": "Pottery for beginners",
            "user_id": cls.instructor.id,
            "start": start,
            "stop": start + timedelta(hours=1),
            "partner_ids": [Command.set([cls.instructor.partner_id.id, student.id])],
        })
        cls.env.cr.flush()  # what a commit does: the precommit hook makes the links
        cls.env["impact.calendar.synchronizer"]._drain()
        cls.links = cls.env["impact.calendar.link"].sudo().search([("user_id", "=", cls.instructor.id)])
        cls.credential = cls.account._credential()
        # What the addon stores on the user (the last connection notice) is A's business too.
        for name in addon_user_fields(cls.registry):
            field = cls.env["res.users"]._fields[name]
            if field.store and field.type == "char":
                cls.instructor.sudo()[name] = "Connected to " + cls.instructor_email

        cls.attackers = {}
        for login, groups in (
            ("sweep_portal", "base.group_portal"),
            ("sweep_outsider", "base.group_user"),
            ("sweep_member", "base.group_user," + GROUP),
        ):
            cls.attackers[login] = new_test_user(cls.env, login=login, groups=groups, password=login + "-Passw0rd")
        cls.member = cls.attackers["sweep_member"]

        # A's forms, saved as the web client saves them before a button (and left behind by
        # a failed connect): one of every wizard of the addon, found in the registry.
        cls.forms = {}
        for model_name in addon_models(cls.registry):
            model = cls.env[model_name].with_user(cls.instructor)
            if model._transient:
                values = dict(FORM_VALUES, account_id=cls.account.id)
                cls.forms[model_name] = model.create({k: v for k, v in values.items() if k in model._fields})

    def setUp(self):
        super().setUp()
        # The sweep is only meaningful when A's world is what we think it is.
        self.assertEqual(self.account.state, "connected")
        self.assertTrue(self.links and all(link.state == "synced" for link in self.links), self.links.read(["state"]))
        self.assertTrue(self.google.live_events(self.instructor_email))
        self.assertTrue(self.credential)

    # -- helpers ------------------------------------------------------------------------------
    def login(self, login):
        self.authenticate(login, login + "-Passw0rd")

    def rpc(self, model, method, args, kwargs=None):
        """One /web/dataset/call_kw request: (result, error name or None)."""
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        }
        with mute_logger("odoo.http"):  # expected refusals
            response = self.url_open(
                f"/web/dataset/call_kw/{model}/{method}",
                data=json.dumps(payload),
                headers={"Content-Type": "application/json"},
            )
        self.assertEqual(response.status_code, 200, response.text[:300])
        body = response.json()
        if "error" in body:
            error = body["error"]
            return None, (error.get("data") or {}).get("name") or error.get("message")
        return body["result"], None

    def addon_rows(self):
        """Every stored row of the addon's models that belongs to A (raw SQL, all columns)."""
        self.env.flush_all()
        owner = {
            "user_id": [self.instructor.id],
            "account_id": self.account.ids,
            "event_ref": self.event.ids,
            "event_id": self.event.ids,
        }
        rows = {}
        for model_name in addon_models(self.registry):
            model = self.env[model_name]
            # A form is A's by its creator (its account_id may be anybody's).
            owners = {"create_uid": [self.instructor.id]} if model._transient else owner
            conditions = [
                SQL("%s = ANY(%s)", SQL.identifier(name), values)
                for name, values in owners.items()
                if name in model._fields and model._fields[name].store and model._fields[name].column_type
            ]
            if conditions:
                self.env.cr.execute(SQL(
                    "SELECT * FROM %s WHERE %s ORDER BY id", SQL.identifier(model._table), SQL(" OR ").join(conditions)
                ))
                rows[model_name] = self.env.cr.dictfetchall()
        return rows

    def snapshot(self):
        """Everything of A's connection: the addon's rows, A's own fields, the provider's side."""
        rows = self.addon_rows()
        user_fields = [
            name for name in addon_user_fields(self.registry) if self.registry["res.users"]._fields[name].store
        ]
        rows["res.users"] = self.instructor.sudo().read(user_fields) if user_fields else []
        with self.google.lock:
            rows["google grants"] = [
                (grant.refresh_token, grant.revoked) for grant in self.google.grants
                if grant.email == self.instructor_email
            ]
        rows["google events"] = self.google.events(self.instructor_email)
        return rows

    def changes(self, before, after):
        return sorted(key for key in before if before[key] != after[key])

    def targets(self, model_name):
        """A's records of this model, as the ids of the call (created in the caller's savepoint)."""
        known = {
            "res.users": self.instructor,
            "res.partner": self.instructor.partner_id,
            "calendar.event": self.event,
            "calendar.attendee": self.event.attendee_ids,
            "impact.calendar.account": self.account,
            "impact.calendar.link": self.links,
            "impact.calendar.credential": self.credential,
        }
        if model_name in known:
            return known[model_name].ids
        model = self.env[model_name]
        if model._transient:
            # Transient records are not per user by themselves: A's saved forms are targets.
            return self.forms[model_name].ids
        for field_name, value in (("account_id", self.account.id), ("user_id", self.instructor.id)):
            if field_name in model._fields:
                return model.sudo().search([(field_name, "=", value)]).ids
        return []

    def call_args(self, model_name, method_name, ids):
        method = getattr(self.registry[model_name], method_name)
        params = list(inspect.signature(method).parameters.values())[1:]
        # Any further required argument gets a harmless JSON value.
        extra = [False for param in params if param.default is param.empty
                 and param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)]
        if getattr(method, "_api", None) in ("model", "model_create"):
            return extra
        return [ids] + extra

    def check_detector(self):
        """The snapshot sees what a request changes, and the savepoint undoes it."""
        self.authenticate("admin", "admin")
        savepoint = self.env.cr.savepoint()
        try:
            before = self.snapshot()
            # Deactivating an instructor must queue the removal of their events.
            _result, error = self.rpc("res.users", "write", [self.instructor.ids, {"active": False}])
            self.assertFalse(error)
            self.env.invalidate_all()
            self.assertTrue(self.changes(before, self.snapshot()), "the snapshot missed a change made over RPC")
        finally:
            savepoint.close(rollback=True)
            self.env.invalidate_all()

    # -- 1. every public method of the addon ---------------------------------------------------
    def test_method_sweep_over_rpc(self):
        methods = addon_public_methods(self.registry)
        # Discovery itself must work, or the sweep would pass by checking nothing.
        self.assertIn(("impact.calendar.link", "action_retry"), methods)
        self.assertIn(("res.users", "action_impact_calendar_resync"), methods)
        self.assertIn("impact.calendar.link", self.snapshot())
        self.check_detector()
        violations = []
        for login in self.attackers:
            self.login(login)
            for model_name, method_name in methods:
                savepoint = self.env.cr.savepoint()
                try:
                    ids = self.targets(model_name)
                    before = self.snapshot()
                    _result, error = self.rpc(model_name, method_name, self.call_args(model_name, method_name, ids))
                    self.env.invalidate_all()
                    changed = self.changes(before, self.snapshot())
                finally:
                    savepoint.close(rollback=True)  # each call starts from A's untouched world
                    self.env.invalidate_all()
                if changed:
                    violations.append(
                        f"{login}: {model_name}.{method_name}({ids}) changed {', '.join(changed)}"
                        f" (answer: {error or 'success'})"
                    )
        self.assertFalse(violations, "Calls on instructor A's records that were not refused:\n" + "\n".join(violations))

    # -- 2. every field the addon adds to res.users, and the addon's own models ------------------
    def test_field_sweep_shows_nothing_of_another_users_connection(self):
        field_names = addon_user_fields(self.registry)
        self.assertIn("impact_calendar_email", field_names)
        self.assertTrue({"impact.calendar.account", "impact.calendar.link"} <= set(addon_models(self.registry)))
        user_id = self.instructor.id
        leaks = []
        for login in self.attackers:
            self.login(login)
            for name in field_names:
                for method, args in (
                    ("read", [[user_id], [name]]),
                    ("search_read", [[("id", "=", user_id)], [name]]),
                ):
                    result, error = self.rpc("res.users", method, args)
                    if error:
                        continue  # refused: nothing shown
                    values = [row[name] for row in result if name in row]
                    if any(values):
                        leaks.append(f"{login}: res.users.{method} {name} = {values!r}")
            for model_name in addon_models(self.registry):
                ids = self.targets(model_name)
                if not ids:
                    continue  # nothing of A's in it (an empty change log)
                for method, args in (("read", [ids]), ("search_read", [[("id", "in", ids)]])):
                    result, error = self.rpc(model_name, method, args)
                    if not error and result:
                        leaks.append(f"{login}: {model_name}.{method} returned {len(result)} of A's records")
        self.assertFalse(leaks, "Instructor A's connection is visible to others:\n" + "\n".join(leaks))

    # -- 2b. the ORM's own methods on every model of the addon, wizards included ----------------
    def harmless_write(self, model_name):
        """Values for a write that changes one stored field of the model ({} when none)."""
        for name, field in self.registry[model_name]._fields.items():
            if not field.store or name in ("id", "create_uid", "create_date", "write_uid", "write_date"):
                continue
            if field.type in ("char", "text"):
                return {name: "https://sweep.example/"}
            if field.type == "boolean":
                return {name: True}
        return {}

    def test_orm_sweep_on_another_users_records(self):
        models = addon_models(self.registry)
        # Discovery must find the wizards, or the sweep checks nothing of them.
        self.assertTrue({"impact.calendar.caldav.wizard", "impact.calendar.disconnect"} <= set(models), models)
        self.assertEqual(set(self.forms), {name for name in models if self.env[name]._transient})
        violations = []
        for login in self.attackers:
            self.login(login)
            for model_name in models:
                ids = self.targets(model_name)
                if not ids:
                    continue  # nothing of A's in it (an empty change log)
                domain = [("id", "in", ids)]
                found, error = self.rpc(model_name, "search", [domain])
                if not error and found:
                    violations.append(f"{login}: {model_name}.search finds {found}")
                # 19.0 deprecates read_group (a warning each call) for formatted_read_group.
                if hasattr(self.registry[model_name], "formatted_read_group"):
                    groups, error = self.rpc(model_name, "formatted_read_group", [domain, ["create_uid"], ["__count"]])
                else:
                    groups, error = self.rpc(model_name, "read_group", [domain, ["create_uid"], ["create_uid"]])
                counted = sum(
                    value for group in groups or [] for key, value in group.items()
                    if key == "__count" or key.endswith("_count")
                )
                if not error and counted:
                    violations.append(f"{login}: {model_name}.read_group counts {counted} of A's records")
                for method, args in (
                    ("write", [ids, self.harmless_write(model_name)]),
                    ("copy", [ids[:1]]),
                    ("unlink", [ids]),
                ):
                    savepoint = self.env.cr.savepoint()
                    try:
                        _result, error = self.rpc(model_name, method, args)
                    finally:
                        savepoint.close(rollback=True)
                        self.env.invalidate_all()
                    if not error:
                        violations.append(f"{login}: {model_name}.{method}({args}) was not refused")
        self.assertFalse(violations, "ORM calls on instructor A's records that were not refused:\n" + "\n".join(violations))

    def test_no_field_of_another_users_records_reads_back(self):
        """Every field of every model of the addon, one read each (a refused field must not
        hide the others), by each attacker on A's records."""
        leaks = []
        for login in self.attackers:
            self.login(login)
            for model_name in addon_models(self.registry):
                ids = self.targets(model_name)
                if not ids:
                    continue
                for name in self.registry[model_name]._fields:
                    if name == "id":
                        continue
                    result, error = self.rpc(model_name, "read", [ids, [name]])
                    values = [row.get(name) for row in result or []]
                    if not error and any(values):
                        leaks.append(f"{login}: {model_name}.{name} = {values!r}")
        self.assertFalse(leaks, "Fields of instructor A's records that others read:\n" + "\n".join(leaks))

    def test_secret_fields_never_read_back_even_to_their_owner(self):
        self.authenticate(self.instructor.login, "sweep_instructor-Passw0rd")
        checked, shown = [], []
        for model_name in [*addon_models(self.registry), "res.users"]:
            ids = self.targets(model_name)
            for name, field in self.registry[model_name]._fields.items():
                if not SECRET_FIELD.search(name) or (model_name == "res.users" and field._module != ADDON):
                    continue
                checked.append(f"{model_name}.{name}")
                result, error = self.rpc(model_name, "read", [ids, [name]])
                values = [row.get(name) for row in result or []]
                if not error and any(values):
                    shown.append(f"{model_name}.{name} = {values!r}")
        # The forms' password and its encrypted copy are among what is checked.
        self.assertIn("impact.calendar.caldav.wizard.password_secret", checked)
        self.assertIn("impact.calendar.credential.secret", checked)
        self.assertFalse(shown, "Secrets that read back:\n" + "\n".join(shown))

    # -- 3. the disconnect wizard's related email --------------------------------------------------
    def test_disconnect_wizard_does_not_leak_email(self):
        wizard = "impact.calendar.disconnect"
        values = {"account_id": self.account.id}
        spec = {"account_id": {}, "email": {}}

        def emails(result):
            rows = result.get("value", {}) if isinstance(result, dict) else result
            rows = [rows] if isinstance(rows, dict) else rows
            return [row["email"] for row in rows if row.get("email")]

        leaks = []
        for login in self.attackers:
            self.login(login)
            # What the form does (onchange, web_save) and the bare ORM path (create, read).
            for method, args in (("onchange", [[], values, ["account_id"], spec]), ("web_save", [[], values, spec])):
                result, error = self.rpc(wizard, method, args)
                if not error and emails(result):
                    leaks.append(f"{login}: {method} {emails(result)}")
            wizard_id, error = self.rpc(wizard, "create", [[values]])
            if error:
                continue
            wizard_id = wizard_id[0] if isinstance(wizard_id, list) else wizard_id
            result, error = self.rpc(wizard, "read", [[wizard_id], ["email"]])
            if not error and emails(result):
                leaks.append(f"{login}: create + read {emails(result)}")
        self.assertFalse(leaks, "The disconnect wizard shows instructor A's account:\n" + "\n".join(leaks))

    # -- 4. Retry on someone else's links ----------------------------------------------------------
    def test_action_retry_refused_for_portal_and_member(self):
        self.env.cr.execute(
            "UPDATE impact_calendar_link SET state = 'rejected', dirty = false,"
            " next_try = (now() AT TIME ZONE 'UTC') + interval '1 day' WHERE user_id = %s",
            [self.instructor.id],
        )
        self.env.invalidate_all()

        problems = []
        for login in ("sweep_portal", "sweep_member"):
            self.login(login)
            before = self.addon_rows()
            _result, error = self.rpc("impact.calendar.link", "action_retry", [self.links.ids])
            self.env.invalidate_all()
            after = self.addon_rows()
            if not error:
                problems.append(f"{login}: action_retry was not refused")
            queue = [(row["id"], row["state"], row["dirty"], row["next_try"]) for row in after["impact.calendar.link"]]
            if after != before:
                problems.append(f"{login}: action_retry changed {self.changes(before, after)}; links now {queue}")
        self.assertFalse(problems, "\n".join(problems))

    # -- 5. the OAuth start route ------------------------------------------------------------------
    def start(self, provider, fetch_site=None):
        headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
        with mute_logger("odoo.http"):
            return self.url_open(f"/impact_calendar/oauth/{provider}/start", headers=headers, allow_redirects=False)

    def pending_flows(self):
        return root.session_store.get(self.session.sid).get(routes.SESSION_KEY, {})

    def test_oauth_start_refuses_cross_site_request(self):
        self.login("sweep_member")
        for provider in ("google", "microsoft"):
            response = self.start(provider, "cross-site")
            self.assertTrue(
                400 <= response.status_code < 500,
                f"{provider}: a cross-site start answered {response.status_code} {response.headers.get('Location')}",
            )
            self.assertNotIn("Location", response.headers)
        self.assertFalse(self.pending_flows(), "a cross-site request started a flow")

    def test_oauth_start_same_origin_redirects_with_account_picker(self):
        self.login("sweep_member")
        for fetch_site in ("same-origin", None):
            for provider, authorize in (
                ("google", self.google.base_url + "/o/oauth2/v2/auth"),
                ("microsoft", self.microsoft.authority_host + "/common/oauth2/v2.0/authorize"),
            ):
                response = self.start(provider, fetch_site)
                self.assertEqual(response.status_code, 303, f"{provider} {fetch_site}: {response.text[:300]}")
                location = response.headers["Location"]
                self.assertTrue(location.startswith(authorize), location)
                if provider == "microsoft":
                    # Without it Microsoft signs the browser's current account in silently.
                    query = parse_qs(urlsplit(location).query)
                    self.assertEqual(query.get("prompt"), ["select_account"], location)

    def test_oauth_start_refused_when_connected_to_another_provider(self):
        connect_offline(self.member, provider="google")
        self.login("sweep_member")
        response = self.start("microsoft", "same-origin")
        location = response.headers.get("Location", "")
        self.assertFalse(
            location.startswith(self.microsoft.authority_host),
            f"a member connected to Google was sent to Microsoft: {response.status_code} {location}",
        )
        self.assertFalse(
            [flow for flow in self.pending_flows().values() if flow.get("provider") == "microsoft"],
            "a Microsoft flow was started for a member connected to Google",
        )

    # -- 6. a state that is not ASCII ----------------------------------------------------------------
    def test_callback_with_non_ascii_state_is_400(self):
        self.login("sweep_member")
        with mute_logger("odoo.http", "odoo.addons.impact_calendar_integration.controllers.main"):
            response = self.url_open(
                "/impact_calendar/oauth/google/callback?state=%C3%A9.%C3%A9&code=x", allow_redirects=False
            )
        self.assertEqual(response.status_code, 400, response.text[:300])
