# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The connect flow end to end through Odoo's HTTP routes, against the loopback OAuth servers."""

from unittest.mock import patch
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from odoo.tests import HttpCase, tagged

from ..controllers import main as routes
from .common import make_user, start_emulators


@tagged("post_install", "-at_install")
class TestOAuthRoutes(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        start_emulators(cls)

    def setUp(self):
        super().setUp()
        for emulator in (self.google, self.microsoft):
            with emulator.lock:
                emulator.log.clear()
        self.google.deny_next = False
        self.member = make_user(self.env, "member", integration=True)
        self.member.password = "member-Passw0rd"
        self.other = make_user(self.env, "othermember", integration=True)
        self.other.password = "other-Passw0rd"
        self.outsider = make_user(self.env, "outsider", integration=False)
        self.outsider.password = "outsider-Passw0rd"
        self.google.login_as("member@gmail.example")
        self.microsoft.seed_user("member@outlook.example")
        self.microsoft.consent_as = "member@outlook.example"

    # -- helpers ------------------------------------------------------------------------------
    def start(self, provider, destination=None):
        query = f"?destination={destination}" if destination else ""
        response = self.url_open(f"/impact_calendar/oauth/{provider}/start{query}", allow_redirects=False)
        self.assertIn(response.status_code, (302, 303), response.text[:300])
        return response.headers["Location"]

    def consent(self, authorize_url):
        """The browser at the provider: consent, then the provider's redirect to our callback."""
        response = requests.get(authorize_url, allow_redirects=False, timeout=10)
        self.assertEqual(response.status_code, 302, response.text[:300])
        return response.headers["Location"]

    def callback(self, url):
        return self.url_open(url, allow_redirects=False)

    def token_calls(self, provider):
        emulator = self.google if provider == "google" else self.microsoft
        return len(emulator.requests(r"/token$", "POST"))

    def account(self, user):
        return self.env["impact.calendar.account"].sudo().search([("user_id", "=", user.id)])

    # -- happy paths -------------------------------------------------------------------------
    def test_google_connect_end_to_end(self):
        self.authenticate("member", "member-Passw0rd")
        authorize = self.start("google")
        query = parse_qs(urlsplit(authorize).query)
        self.assertTrue(authorize.startswith(self.google.base_url + "/o/oauth2/v2/auth"))
        self.assertEqual(query["redirect_uri"], [self.base_url() + "/impact_calendar/oauth/google/callback"])
        # A dedicated calendar by default: only the calendars the app creates, never calendar.events.
        self.assertEqual(
            set(query["scope"][0].split()),
            {"https://www.googleapis.com/auth/calendar.app.created", "openid", "email"},
        )
        self.assertEqual((query["access_type"], query["prompt"]), (["offline"], ["consent"]))
        self.assertEqual(query["code_challenge_method"], ["S256"])
        response = self.callback(self.consent(authorize))
        self.assertIn(response.status_code, (302, 303))
        location = response.headers["Location"]
        self.assertTrue(location.endswith(routes.PREFERENCES_URL), location)
        self.assertNotIn("/web/login", location)
        account = self.account(self.member)
        self.assertEqual((account.provider, account.email, account.state), ("google", "member@gmail.example", "connected"))
        self.assertEqual(account.destination, "dedicated")
        tokens = account._credential()._read_tokens()
        self.assertTrue(tokens.refresh_token and tokens.access_token)
        # The landing page is a page of this server that loads for the user.
        self.assertEqual(self.url_open(location).status_code, 200)

    def test_microsoft_connect_end_to_end(self):
        self.authenticate("member", "member-Passw0rd")
        authorize = self.start("microsoft")
        self.assertTrue(authorize.startswith(self.microsoft.authority_host + "/common/oauth2/v2.0/authorize"))
        query = parse_qs(urlsplit(authorize).query)
        self.assertEqual(query["redirect_uri"], [self.base_url() + "/impact_calendar/oauth/microsoft/callback"])
        self.assertIn("Calendars.ReadWrite", query["scope"][0])
        self.assertIn("User.Read", query["scope"][0])
        self.assertNotIn("form_post", query.get("response_mode", ["query"]))
        response = self.callback(self.consent(authorize))
        self.assertIn(response.status_code, (302, 303), response.text[:300])
        self.assertTrue(response.headers["Location"].endswith(routes.PREFERENCES_URL))
        account = self.account(self.member)
        self.assertEqual((account.provider, account.email, account.state), ("microsoft", "member@outlook.example", "connected"))
        self.assertTrue(account._credential()._read_tokens().msal_cache)

    def test_google_main_calendar_asks_for_owned_events_only(self):
        self.authenticate("member", "member-Passw0rd")
        authorize = self.start("google", "main")
        scopes = set(parse_qs(urlsplit(authorize).query)["scope"][0].split())
        self.assertEqual(scopes, {"https://www.googleapis.com/auth/calendar.events.owned", "openid", "email"})
        self.callback(self.consent(authorize))
        self.assertEqual(self.account(self.member).destination, "main")

    def test_default_destination_parameter_and_forced_destination(self):
        self.authenticate("member", "member-Passw0rd")
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("impact_calendar.default_destination", "main")
        self.assertIn("calendar.events.owned", self.start("google"))
        params.set_param("impact_calendar.default_destination", "dedicated")
        params.set_param("impact_calendar.force_destination", "True")
        forced = self.start("google", "main")
        self.assertIn("calendar.app.created", forced)
        self.assertNotIn("calendar.events", forced)
        self.callback(self.consent(forced))
        self.assertEqual(self.account(self.member).destination, "dedicated")

    def test_microsoft_destination_is_kept_from_start_to_callback(self):
        self.authenticate("member", "member-Passw0rd")
        self.callback(self.consent(self.start("microsoft", "main")))
        self.assertEqual(self.account(self.member).destination, "main")

    def test_consent_denied_returns_to_preferences_with_message(self):
        self.authenticate("member", "member-Passw0rd")
        self.google.deny_next = True
        response = self.callback(self.consent(self.start("google")))
        self.assertIn(response.status_code, (302, 303))
        self.assertTrue(response.headers["Location"].endswith(routes.PREFERENCES_URL))
        self.assertFalse(self.account(self.member))
        self.member.invalidate_recordset()
        self.assertIn("cancelled", self.member.impact_calendar_notice)
        self.assertEqual(self.token_calls("google"), 0)

    # -- refusals ----------------------------------------------------------------------------
    def test_outsider_is_refused_before_any_redirect(self):
        self.authenticate("outsider", "outsider-Passw0rd")
        for provider in ("google", "microsoft"):
            response = self.url_open(f"/impact_calendar/oauth/{provider}/start", allow_redirects=False)
            self.assertEqual(response.status_code, 403)
        self.assertFalse(self.google.requests(r"/o/oauth2"))
        self.assertFalse(self.microsoft.requests(r"/authorize"))

    def test_unknown_provider_is_not_found(self):
        self.authenticate("member", "member-Passw0rd")
        self.assertEqual(self.url_open("/impact_calendar/oauth/yahoo/start", allow_redirects=False).status_code, 404)

    def _tamper(self, url, **changes):
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query.update(changes)
        return parts._replace(query=urlencode(query)).geturl()

    def test_tampered_state_is_refused_before_token_exchange(self):
        self.authenticate("member", "member-Passw0rd")
        callback = self.consent(self.start("google"))
        state = parse_qs(urlsplit(callback).query)["state"][0]
        body, signature = state.rsplit(".", 1)
        forged = body + "." + ("0" if signature[0] != "0" else "1") + signature[1:]
        for bad in (forged, "", "garbage", body):
            response = self.callback(self._tamper(callback, state=bad))
            self.assertEqual(response.status_code, 400, bad)
        self.assertEqual(self.token_calls("google"), 0)
        self.assertFalse(self.account(self.member))

    def test_replayed_state_is_refused(self):
        self.authenticate("member", "member-Passw0rd")
        callback = self.consent(self.start("google"))
        self.assertIn(self.callback(callback).status_code, (302, 303))
        self.assertEqual(self.token_calls("google"), 1)
        self.assertEqual(self.callback(callback).status_code, 400)
        self.assertEqual(self.token_calls("google"), 1, "a replay never reaches the token endpoint")

    def test_cross_user_state_is_refused(self):
        self.authenticate("member", "member-Passw0rd")
        callback = self.consent(self.start("google"))
        self.authenticate("othermember", "other-Passw0rd")
        self.assertEqual(self.callback(callback).status_code, 400)
        self.assertEqual(self.token_calls("google"), 0)
        self.assertFalse(self.account(self.member) | self.account(self.other))

    def test_state_of_another_provider_is_refused(self):
        self.authenticate("member", "member-Passw0rd")
        callback = self.consent(self.start("google"))
        wrong = callback.replace("/oauth/google/callback", "/oauth/microsoft/callback")
        self.assertEqual(self.callback(wrong).status_code, 400)
        self.assertEqual(self.token_calls("google") + self.token_calls("microsoft"), 0)

    def test_expired_state_is_refused(self):
        self.authenticate("member", "member-Passw0rd")
        with patch.object(routes, "STATE_TTL", -1):
            callback = self.consent(self.start("google"))
        self.assertEqual(self.callback(callback).status_code, 400)
        self.assertEqual(self.token_calls("google"), 0)

    def test_cannot_connect_a_second_provider_without_disconnecting(self):
        self.authenticate("member", "member-Passw0rd")
        self.callback(self.consent(self.start("google")))
        # Refused before any flow starts: no token is obtained only to be thrown away.
        self.assertTrue(self.start("microsoft").endswith(routes.PREFERENCES_URL))
        self.assertEqual(self.token_calls("microsoft"), 0)
        self.assertEqual(self.account(self.member).provider, "google")
        self.member.invalidate_recordset()
        self.assertIn("Disconnect", self.member.impact_calendar_notice)

    def test_unconfigured_provider_says_so(self):
        self.env["ir.config_parameter"].sudo().set_param("impact_calendar.google_client_id", "")
        self.authenticate("member", "member-Passw0rd")
        location = self.start("google")
        self.assertTrue(location.endswith(routes.PREFERENCES_URL))
        self.member.invalidate_recordset()
        self.assertIn("not configured", self.member.impact_calendar_notice)
