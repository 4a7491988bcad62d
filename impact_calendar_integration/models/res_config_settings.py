# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..sync.config import endpoint_problem

ENDPOINT_SETTINGS = (
    "impact_calendar_google_auth_endpoint",
    "impact_calendar_google_token_endpoint",
    "impact_calendar_google_revoke_endpoint",
    "impact_calendar_google_api_endpoint",
    "impact_calendar_microsoft_authority_host",
    "impact_calendar_microsoft_graph_endpoint",
)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    impact_calendar_google_client_id = fields.Char(
        "Google client ID", config_parameter="impact_calendar.google_client_id"
    )
    impact_calendar_google_client_secret = fields.Char(
        "Google client secret", config_parameter="impact_calendar.google_client_secret"
    )
    impact_calendar_google_auth_endpoint = fields.Char(
        "Google authorization endpoint", config_parameter="impact_calendar.google_auth_endpoint"
    )
    impact_calendar_google_token_endpoint = fields.Char(
        "Google token endpoint", config_parameter="impact_calendar.google_token_endpoint"
    )
    impact_calendar_google_revoke_endpoint = fields.Char(
        "Google revoke endpoint", config_parameter="impact_calendar.google_revoke_endpoint"
    )
    impact_calendar_google_api_endpoint = fields.Char(
        "Google Calendar API root", config_parameter="impact_calendar.google_api_endpoint"
    )
    impact_calendar_microsoft_client_id = fields.Char(
        "Microsoft application (client) ID", config_parameter="impact_calendar.microsoft_client_id"
    )
    impact_calendar_microsoft_client_secret = fields.Char(
        "Microsoft client secret", config_parameter="impact_calendar.microsoft_client_secret"
    )
    impact_calendar_microsoft_tenant = fields.Char(
        "Microsoft tenant", config_parameter="impact_calendar.microsoft_tenant"
    )
    impact_calendar_microsoft_authority_host = fields.Char(
        "Microsoft authority host", config_parameter="impact_calendar.microsoft_authority_host"
    )
    impact_calendar_microsoft_graph_endpoint = fields.Char(
        "Microsoft Graph root", config_parameter="impact_calendar.microsoft_graph_endpoint"
    )
    impact_calendar_include_student_names = fields.Boolean(
        "Show student names in external events",
        config_parameter="impact_calendar.include_student_names",
        help="Off: the external event shows only how many students are booked.",
    )
    impact_calendar_event_domain = fields.Char(
        "Availabilities",
        config_parameter="impact_calendar.event_domain",
        default="[]",
        help="Which calendar events count as bookable availabilities (empty: every event the instructor organizes).",
    )
    impact_calendar_dedicated_calendar_name = fields.Char(
        "Dedicated calendar name",
        config_parameter="impact_calendar.dedicated_calendar_name",
        default="Classes",
        help="Name of the calendar the addon creates in each instructor's account.",
    )
    impact_calendar_default_destination = fields.Selection(
        [("dedicated", "A dedicated calendar"), ("main", "The instructor's main calendar")],
        string="Classes go to",
        config_parameter="impact_calendar.default_destination",
        default="dedicated",
    )
    impact_calendar_force_destination = fields.Boolean(
        "Same for everyone",
        config_parameter="impact_calendar.force_destination",
        help="Instructors cannot choose: every new connection uses this destination.",
    )
    impact_calendar_google_redirect_uri = fields.Char(
        "Google redirect URI", compute="_compute_impact_calendar_redirect_uris"
    )
    impact_calendar_microsoft_redirect_uri = fields.Char(
        "Microsoft redirect URI", compute="_compute_impact_calendar_redirect_uris"
    )
    impact_calendar_key_configured = fields.Boolean(compute="_compute_impact_calendar_key_configured")

    @api.depends("company_id")
    def _compute_impact_calendar_redirect_uris(self):
        accounts = self.env["impact.calendar.account"]
        for settings in self:
            settings.impact_calendar_google_redirect_uri = accounts._redirect_uri("google")
            settings.impact_calendar_microsoft_redirect_uri = accounts._redirect_uri("microsoft")

    def _compute_impact_calendar_key_configured(self):
        configured = bool(self.env["impact.calendar.credential"]._configured_key())
        for settings in self:
            settings.impact_calendar_key_configured = configured

    def set_values(self):
        # Whoever sets an endpoint receives every instructor's refresh token: https only.
        for settings in self:
            problems = [
                problem
                for name in ENDPOINT_SETTINGS
                if settings[name] and (problem := endpoint_problem(settings[name]))
            ]
            if problems:
                raise ValidationError("\n".join(problems))
        return super().set_values()
