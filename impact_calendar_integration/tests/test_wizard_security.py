# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The connect and disconnect forms over real JSON-RPC, as the web client drives them: the
form is saved (``web_save``), then its button is called in a second request."""

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from .common import GROUP, connect_offline, make_user
from .emulators.radicale_server import RadicaleServer

WIZARD = "impact.calendar.caldav.wizard"
PASSWORD = "victim-app-password"


class _Recorder(BaseHTTPRequestHandler):
    """Any request: recorded with its headers, answered 401 (as a server asking for Basic)."""

    def _any(self):
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="attacker"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_PROPFIND = do_OPTIONS = do_MKCALENDAR = do_REPORT = do_DELETE = _any

    def log_message(self, *args):
        pass


def closed_port():
    """A loopback port nobody listens on: a server that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("post_install", "-at_install")
class TestWizardSecurity(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The tests talk to their own loopback servers only.
        cls.env["ir.config_parameter"].sudo().set_param("impact_calendar.caldav_allow_private_hosts", "True")
        cls.victim = new_test_user(
            cls.env, login="wiz_victim", groups="base.group_user," + GROUP, password="wiz_victim-Passw0rd"
        )
        cls.thief = new_test_user(
            cls.env, login="wiz_thief", groups="base.group_user," + GROUP, password="wiz_thief-Passw0rd"
        )
        cls.attacker_server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        cls.attacker_server.seen = []
        threading.Thread(target=cls.attacker_server.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.attacker_server.server_close)
        cls.addClassCleanup(cls.attacker_server.shutdown)
        cls.attacker_url = "http://127.0.0.1:%s/" % cls.attacker_server.server_address[1]

    # -- helpers ------------------------------------------------------------------------------
    def login(self, user):
        self.authenticate(user.login, user.login + "-Passw0rd")

    def jsonrpc(self, route, params):
        """(result, error name or None) of one JSON-RPC request of the web client."""
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}
        with mute_logger("odoo.http"):  # expected refusals
            response = self.url_open(route, data=json.dumps(payload), headers={"Content-Type": "application/json"})
        self.assertEqual(response.status_code, 200, response.text[:300])
        body = response.json()
        if "error" in body:
            return None, (body["error"].get("data") or {}).get("name") or body["error"].get("message")
        return body["result"], None

    def call(self, model, method, args, kwargs=None):
        return self.jsonrpc(
            "/web/dataset/call_kw", {"model": model, "method": method, "args": args, "kwargs": kwargs or {}}
        )

    def button(self, model, method, ids):
        return self.jsonrpc(
            "/web/dataset/call_button", {"model": model, "method": method, "args": [ids], "kwargs": {}}
        )

    def save_and_connect(self, values):
        """What Connect does in the browser: save the form, then call the button on its id."""
        spec = {name: {} for name in ("server_url", "username", "password")}
        saved, error = self.call(WIZARD, "web_save", [[], values], {"specification": spec})
        self.assertFalse(error)
        wizard_id = saved[0]["id"]
        self.assertFalse(saved[0]["password"], "the password never reads back")
        return wizard_id, self.button(WIZARD, "action_connect", [wizard_id])

    def stored_rows(self, wizard_id):
        """The row as the database holds it (the password column included)."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT password_secret, server_url FROM impact_calendar_caldav_wizard WHERE id = %s", [wizard_id]
        )
        return self.env.cr.fetchall()

    def failed_connect_of_victim(self):
        """The victim's Connect to a server that is down, as the browser does it."""
        self.login(self.victim)
        down = "http://127.0.0.1:%s/" % closed_port()
        return self.save_and_connect(
            {"server_preset": "other", "server_url": down, "username": "victim@icloud.example", "password": PASSWORD}
        )

    # -- finding 1: the password of a failed connect ------------------------------------------
    def test_failed_connect_keeps_no_password_and_says_why(self):
        wizard_id, (result, error) = self.failed_connect_of_victim()
        # The failure is an answer (the form again, with the reason), so that this
        # transaction commits the password's removal: a raise would roll it back.
        self.assertFalse(error, "a failed connect must not roll back the password's removal")
        self.assertEqual((result["res_model"], result["res_id"], result["target"]), (WIZARD, wizard_id, "new"))
        [(secret, _url)] = self.stored_rows(wizard_id)
        self.assertFalse(secret, "a failed connect left the encrypted password on the row")
        [row], error = self.call(WIZARD, "read", [[wizard_id], ["error", "password"]])
        self.assertFalse(error)
        self.assertTrue(row["error"].startswith("Connection failed"), row)
        self.assertFalse(row["password"])

    def test_another_member_cannot_reach_a_saved_form(self):
        """The attack of issue 21: B lists the forms, points A's at their own server, calls
        Connect; A's password went to B's server as HTTP Basic."""
        wizard_id, _answer = self.failed_connect_of_victim()
        # Make the worst case certain: A's form holds the password again (a form saved and
        # not yet connected, or a connect that crashed).
        victim_wizard = self.env[WIZARD].with_user(self.victim).browse(wizard_id)
        victim_wizard.password = PASSWORD
        self.assertTrue(self.stored_rows(wizard_id)[0][0])

        self.login(self.thief)
        rows, error = self.call(WIZARD, "search_read", [[]], {"fields": ["server_url", "username"]})
        self.assertFalse(error)
        self.assertNotIn(wizard_id, [row["id"] for row in rows], "another member lists the victim's form")
        _result, error = self.call(WIZARD, "write", [[wizard_id], {"server_url": self.attacker_url}])
        self.assertTrue(error, "another member rewrote the victim's form")
        _result, error = self.button(WIZARD, "action_connect", [wizard_id])
        self.assertTrue(error, "another member connected with the victim's form")
        leaked = [headers for _method, _path, headers in self.attacker_server.seen if "Authorization" in headers]
        self.assertFalse(leaked, "the victim's password was sent to the attacker's server")
        basic = base64.b64encode(f"victim@icloud.example:{PASSWORD}".encode()).decode()
        self.assertNotIn(basic, repr(self.attacker_server.seen))
        self.assertEqual(self.stored_rows(wizard_id)[0][1], victim_wizard.sudo().server_url)
        self.assertNotEqual(victim_wizard.sudo().server_url, self.attacker_url)

        # Server-side code that goes through sudo() keeps the caller: still refused.
        with self.assertRaises(AccessError):
            victim_wizard.with_user(self.thief).sudo().action_connect()
        with self.assertRaises(AccessError):
            victim_wizard.with_user(self.thief).sudo().write({"password": "x"})

    def test_successful_connect_leaves_no_form_behind(self):
        dav = RadicaleServer().start()
        self.addCleanup(dav.stop)
        dav.add_user("wiz_victim", PASSWORD)
        self.login(self.victim)
        wizard_id, (result, error) = self.save_and_connect(
            {"server_preset": "other", "server_url": dav.base_url + "/", "username": "wiz_victim", "password": PASSWORD}
        )
        self.assertFalse(error)
        self.assertEqual(result.get("tag"), "soft_reload", result)
        account = self.env["impact.calendar.account"].sudo().search([("user_id", "=", self.victim.id)])
        self.assertEqual(account.provider, "caldav")
        self.assertEqual(self.stored_rows(wizard_id), [], "the connected form stayed in the database")

    # -- finding 7: what the disconnect dialog promises ------------------------------------------
    def test_disconnect_dialog_says_what_happens_per_provider(self):
        notes = {}
        for provider in ("google", "microsoft", "caldav"):
            user = make_user(self.env, f"wiz_disconnect_{provider}")
            account = connect_offline(user, provider=provider)
            action = account.with_user(user).action_disconnect()
            wizard = self.env[action["res_model"]].with_user(user).with_context(**action["context"]).create({})
            notes[provider] = wizard.revocation_note or ""
        self.assertIn("revokes its access at Google", notes["google"])
        for provider in ("microsoft", "caldav"):
            self.assertNotIn("revokes its access", notes[provider], "nothing is revoked for " + provider)
        self.assertIn("https://myapps.microsoft.com", notes["microsoft"])
        self.assertIn("https://account.live.com/consent/Manage", notes["microsoft"])
        self.assertIn("app-specific password", notes["caldav"])
        self.assertIn("account.apple.com", notes["caldav"])
        # The form shows the note, and names no provider itself.
        arch = self.env.ref("impact_calendar_integration.impact_calendar_disconnect_view_form").arch
        self.assertIn('name="revocation_note"', arch)
        self.assertNotIn("revokes its access", arch)
