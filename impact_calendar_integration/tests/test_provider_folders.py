# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A provider is one folder: whatever the registry holds shows in Settings, Preferences and the
connections filter, and a provider discovered from a test folder connects through the routes."""

import os
from urllib.parse import parse_qs, urlsplit

from odoo.tests import HttpCase, tagged

from ..models.res_config_settings import _provider_fields
from ..sync import providers
from .common import make_user

TOY_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "toy_provider")
TOY_PACKAGE = __name__.rsplit(".", 1)[0] + ".toy_provider"


@tagged("post_install", "-at_install")
class TestProviderFolders(HttpCase):
    def combined_arch(self, xmlid):
        return self.env.ref(xmlid)._get_combined_arch()

    def test_every_provider_shows_in_settings_preferences_and_filters(self):
        settings_arch = self.combined_arch("base.res_config_settings_view_form")
        preferences_arch = self.combined_arch("base.view_users_form_simple_modif")
        search_arch = self.combined_arch("impact_calendar_integration.impact_calendar_account_view_search")
        settings_fields = self.env["res.config.settings"]._fields
        for provider in providers.entries():
            for setting in provider.settings:
                name = provider.setting_field(setting)
                self.assertEqual(settings_fields[name].config_parameter, provider.setting_key(setting))
                self.assertTrue(settings_arch.xpath(f"//field[@name='{name}']"), f"{name} in Settings")
            self.assertTrue(
                preferences_arch.xpath(f"//div[@name='impact_calendar_connect']/button[@name='action_impact_calendar_connect_{provider.name}']"),
                f"{provider.name}'s connect button in Preferences",
            )
            self.assertTrue(search_arch.xpath(f"//filter[@name='{provider.name}']"), f"{provider.name}'s filter")
            self.assertIn(provider.name, dict(self.env["impact.calendar.account"]._fields["provider"].selection))

    def test_defaults_are_seeded_from_the_declarations(self):
        get = self.env["ir.config_parameter"].sudo().get_param
        for provider, setting in providers.endpoint_settings():
            self.assertEqual(get(provider.setting_key(setting)), provider.setting_default(setting))

    def test_a_provider_from_a_test_folder_connects_through_the_routes(self):
        providers.discover(TOY_PACKAGE, [TOY_FOLDER])
        self.addCleanup(providers.REGISTRY.pop, "toy", None)
        # Settings: its fields come from its declaration (the next registry build adds them).
        generated = _provider_fields()
        endpoint = generated["impact_calendar_toy_endpoint"]
        given = getattr(endpoint, "args", None) or endpoint._args__  # unbound field: 18.0 / 19.0 name
        self.assertEqual(given["config_parameter"], "impact_calendar.toy_endpoint")
        self.assertIn("impact_calendar_toy_redirect_uri", generated)
        # Preferences: the connect route knows it, checks its settings and sends the user to it.
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("impact_calendar.toy_client_id", "toy-id")
        params.set_param("impact_calendar.toy_client_secret", "toy-secret")
        member = make_user(self.env, "toymember", integration=True)
        member.password = "toymember-Passw0rd"
        self.authenticate("toymember", "toymember-Passw0rd")
        response = self.url_open("/impact_calendar/oauth/toy/start", allow_redirects=False)
        self.assertIn(response.status_code, (302, 303), response.text[:300])
        consent = urlsplit(response.headers["Location"])
        self.assertEqual(f"{consent.scheme}://{consent.netloc}{consent.path}", "https://toy.example/api/consent")
        self.assertTrue(parse_qs(consent.query)["state"][0])
        # The https check holds for its undeclared URL setting too: back to Preferences, not to it.
        params.set_param("impact_calendar.toy_endpoint", "http://toy.example/api")
        response = self.url_open("/impact_calendar/oauth/toy/start", allow_redirects=False)
        self.assertNotIn("toy.example", response.headers.get("Location", ""))
