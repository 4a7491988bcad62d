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


def _setting(field_type, label, key, **options):
    """A Settings field stored in the system parameter ``impact_calendar.<key>``."""
    return field_type(string=label, config_parameter=f"impact_calendar.{key}", **options)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    impact_calendar_google_client_id = _setting(fields.Char, "Google client ID", "google_client_id")
    impact_calendar_google_client_secret = _setting(fields.Char, "Google client secret", "google_client_secret")
    impact_calendar_google_auth_endpoint = _setting(fields.Char, "Google authorization endpoint", "google_auth_endpoint")
    impact_calendar_google_token_endpoint = _setting(fields.Char, "Google token endpoint", "google_token_endpoint")
    impact_calendar_google_revoke_endpoint = _setting(fields.Char, "Google revoke endpoint", "google_revoke_endpoint")
    impact_calendar_google_api_endpoint = _setting(fields.Char, "Google Calendar API root", "google_api_endpoint")
    impact_calendar_microsoft_client_id = _setting(
        fields.Char, "Microsoft application (client) ID", "microsoft_client_id"
    )
    impact_calendar_microsoft_client_secret = _setting(fields.Char, "Microsoft client secret", "microsoft_client_secret")
    impact_calendar_microsoft_tenant = _setting(fields.Char, "Microsoft tenant", "microsoft_tenant")
    impact_calendar_microsoft_authority_host = _setting(fields.Char, "Microsoft authority host", "microsoft_authority_host")
    impact_calendar_microsoft_graph_endpoint = _setting(fields.Char, "Microsoft Graph root", "microsoft_graph_endpoint")
    impact_calendar_include_student_names = _setting(
        fields.Boolean, "Show student names in external events", "include_student_names",
        help="Off: the external event shows only how many students are booked.",
    )
    impact_calendar_event_domain = _setting(
        fields.Char, "Availabilities", "event_domain", default="[]",
        help="Which calendar events count as bookable availabilities (empty: every event the instructor organizes).",
    )
    impact_calendar_dedicated_calendar_name = _setting(
        fields.Char, "Dedicated calendar name", "dedicated_calendar_name", default="Classes",
        help="Name of the calendar the addon creates in each instructor's account.",
    )
    impact_calendar_default_destination = _setting(
        fields.Selection, "Classes go to", "default_destination", default="dedicated",
        selection=[("dedicated", "A dedicated calendar"), ("main", "The instructor's main calendar")],
    )
    impact_calendar_force_destination = _setting(
        fields.Boolean, "Same for everyone", "force_destination",
        help="Instructors cannot choose: every new connection uses this destination.",
    )
    impact_calendar_caldav_allow_private_hosts = _setting(
        fields.Boolean, "CalDAV servers on private networks", "caldav_allow_private_hosts",
        help="Lets users connect a CalDAV server on this machine or a private network (an "
        "on-premises Nextcloud), also over plain http. Risk: any member can then make the Odoo "
        "server send requests to internal services. Off: only public https servers.",
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
