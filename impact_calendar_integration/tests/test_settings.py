# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.tests import TransactionCase, tagged

PARAMS = {
    "impact_calendar_google_client_id": "impact_calendar.google_client_id",
    "impact_calendar_google_client_secret": "impact_calendar.google_client_secret",
    "impact_calendar_google_auth_endpoint": "impact_calendar.google_auth_endpoint",
    "impact_calendar_google_token_endpoint": "impact_calendar.google_token_endpoint",
    "impact_calendar_google_revoke_endpoint": "impact_calendar.google_revoke_endpoint",
    "impact_calendar_google_api_endpoint": "impact_calendar.google_api_endpoint",
    "impact_calendar_microsoft_client_id": "impact_calendar.microsoft_client_id",
    "impact_calendar_microsoft_client_secret": "impact_calendar.microsoft_client_secret",
    "impact_calendar_microsoft_tenant": "impact_calendar.microsoft_tenant",
    "impact_calendar_microsoft_authority_host": "impact_calendar.microsoft_authority_host",
    "impact_calendar_microsoft_graph_endpoint": "impact_calendar.microsoft_graph_endpoint",
}


@tagged("post_install", "-at_install")
class TestSettings(TransactionCase):
    def test_defaults_are_the_public_endpoints(self):
        get = self.env["ir.config_parameter"].sudo().get_param
        self.assertEqual(get("impact_calendar.google_api_endpoint"), "https://www.googleapis.com/calendar/v3/")
        self.assertEqual(get("impact_calendar.microsoft_graph_endpoint"), "https://graph.microsoft.com/v1.0")
        self.assertEqual(get("impact_calendar.microsoft_authority_host"), "https://login.microsoftonline.com")
        self.assertEqual(get("impact_calendar.google_auth_endpoint"), "https://accounts.google.com/o/oauth2/v2/auth")

    def test_round_trip_to_system_parameters(self):
        # Endpoints must be https URLs; any string does for the other settings.
        values = {
            field: f"https://{field.replace('_', '-')}.example.com" if "endpoint" in field or "host" in field
            else f"value-of-{field}"
            for field in PARAMS
        }
        settings = self.env["res.config.settings"].create(values)
        settings.execute()
        get = self.env["ir.config_parameter"].sudo().get_param
        for field, key in PARAMS.items():
            self.assertEqual(get(key), values[field], key)
        reloaded = self.env["res.config.settings"].create({})
        for field in PARAMS:
            self.assertEqual(reloaded[field], values[field], field)

    def test_privacy_defaults_to_count_only_and_round_trips(self):
        self.assertFalse(self.env["res.config.settings"].create({}).impact_calendar_include_student_names)
        self.env["res.config.settings"].create({"impact_calendar_include_student_names": True}).execute()
        self.assertTrue(self.env["res.config.settings"].create({}).impact_calendar_include_student_names)

    def test_redirect_uris_follow_web_base_url(self):
        self.env["ir.config_parameter"].sudo().set_param("web.base.url", "https://odoo.example.com")
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(
            settings.impact_calendar_google_redirect_uri,
            "https://odoo.example.com/impact_calendar/oauth/google/callback",
        )
        self.assertEqual(
            settings.impact_calendar_microsoft_redirect_uri,
            "https://odoo.example.com/impact_calendar/oauth/microsoft/callback",
        )
