# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from lxml import etree

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..sync import providers
from ..sync.config import endpoint_problem


def _setting(field_type, label, key, **options):
    """A Settings field stored in the system parameter ``impact_calendar.<key>``."""
    return field_type(string=label, config_parameter=f"impact_calendar.{key}", **options)


def _redirect_field(provider):
    return f"impact_calendar_{provider.name}_redirect_uri"


def _provider_fields(entries=None):
    """{field name: field} of every registered provider's settings (or of ``entries``), and the
    redirect URI of each OAuth provider (what the administrator copies into the provider's app)."""
    result = {}
    for provider in providers.entries() if entries is None else entries:
        for setting in provider.settings:
            field_type = fields.Boolean if setting.kind == "boolean" else fields.Char
            options = {"help": setting.help} if setting.help else {}
            result[provider.setting_field(setting)] = field_type(
                string=setting.label, config_parameter=provider.setting_key(setting), **options
            )
        if provider.connect == providers.OAUTH:
            result[_redirect_field(provider)] = fields.Char(
                provider.redirect_uri_label or f"{provider.label} redirect URI", compute="_compute_impact_calendar_redirect_uris"
            )
    return result


def _setting_row(field_name, first=False, **attributes):
    row = etree.Element("div", {"class": "row mt8" if first else "row"})
    etree.SubElement(row, "label", {"for": field_name, "class": "col-lg-4 o_light_label"})
    etree.SubElement(row, "field", dict(attributes, name=field_name))
    return row


def _add_generated_block(arch, provider):
    """Add ``provider``'s Settings from its declared ``Setting``s: its own block before the
    destination, its advanced ones among the endpoints (debug mode)."""
    anchor = arch.xpath("//setting[@id='impact_calendar_destination']")
    endpoints = arch.xpath("//div[@name='impact_calendar_endpoint_fields']")
    if not anchor or not endpoints:
        return
    block = etree.Element("setting", {"id": f"impact_calendar_{provider.name}", "string": provider.label})
    group = etree.SubElement(block, "div", {"class": "content-group"})
    for setting in provider.settings:
        attributes = {"password": "True"} if setting.secret else {}
        if setting.placeholder:
            attributes["placeholder"] = setting.placeholder
        target = endpoints[0] if setting.advanced else group
        target.append(_setting_row(provider.setting_field(setting), first=target is group and not len(group), **attributes))
    if provider.connect == providers.OAUTH:
        group.append(_setting_row(_redirect_field(provider), first=not len(group), widget="CopyClipboardChar"))
    anchor[0].addprevious(block)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # Each provider's settings, declared once in its folder (``sync/providers/<name>/``).
    vars().update(_provider_fields())  # pylint: disable=undefined-variable
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
    impact_calendar_key_configured = fields.Boolean(compute="_compute_impact_calendar_key_configured")

    # -- Settings form: a provider without a view fragment of its own gets a generated block ----
    @api.model
    def _get_view_cache_key(self, view_id=None, view_type="form", **options):
        # The generated blocks follow the provider registry: a provider discovered later shows.
        return super()._get_view_cache_key(view_id, view_type, **options) + (tuple(providers.REGISTRY),)

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        if view_type == "form" and arch.xpath("//block[@name='impact_calendar_setting_container']"):
            shown = set(arch.xpath("//field/@name"))
            for provider in providers.entries():
                names = [provider.setting_field(setting) for setting in provider.settings]
                if names and not shown.intersection(names) and all(name in self._fields for name in names):
                    _add_generated_block(arch, provider)
        return arch, view

    @api.depends("company_id")
    def _compute_impact_calendar_redirect_uris(self):
        accounts = self.env["impact.calendar.account"]
        names = [
            (provider.name, _redirect_field(provider))
            for provider in providers.entries()
            if _redirect_field(provider) in self._fields
        ]
        for settings in self:
            for name, field in names:
                settings[field] = accounts._redirect_uri(name)

    def _compute_impact_calendar_key_configured(self):
        configured = bool(self.env["impact.calendar.credential"]._configured_key())
        for settings in self:
            settings.impact_calendar_key_configured = configured

    def set_values(self):
        # Whoever sets an endpoint receives every instructor's refresh token: https only.
        for settings in self:
            problems = [
                problem
                for provider, setting in providers.endpoint_settings()
                if (name := provider.setting_field(setting)) in settings._fields
                and settings[name]
                and (problem := endpoint_problem(settings[name]))
            ]
            if problems:
                raise ValidationError("\n".join(problems))
        return super().set_values()

    @api.model
    def _impact_calendar_seed_defaults(self):
        """Store each provider's default endpoints where no value is set yet, so that Settings
        shows them (install and every update: a new provider's defaults appear too)."""
        params = self.env["ir.config_parameter"].sudo()
        for provider in providers.entries():
            for setting in provider.settings:
                default = provider.setting_default(setting)
                key = provider.setting_key(setting)
                if setting.kind == "char" and default and params.get_param(key) is False:
                    params.set_param(key, default)
