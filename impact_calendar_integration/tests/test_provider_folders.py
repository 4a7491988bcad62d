# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A provider is one folder: whatever the registry holds shows in Settings, Preferences and the
connections filter, and a provider discovered from a test folder (no other file changing) shows
in Settings and Preferences, connects through the routes and pushes through the engine."""

import importlib
import os
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from odoo import Command, models
from odoo.exceptions import UserError
from odoo.tests import HttpCase, tagged

from ..models.res_config_settings import _provider_fields
from ..sync import providers
from .common import add_students, create_class, make_user

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
            self.assertIn(provider.name, dict(self.env["impact.calendar.account"].fields_get(["provider"])["provider"]["selection"]))

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
        # Before that build, Settings shows the others as before and waits for its fields;
        # Preferences, generated per request from the registry, shows its button at once.
        settings_arch = etree.fromstring(self.env["res.config.settings"].get_views([(False, "form")])["views"]["form"]["arch"])
        self.assertFalse(settings_arch.xpath("//setting[@id='impact_calendar_toy']"))
        self.assertTrue(settings_arch.xpath("//setting[@id='impact_calendar_destination']"))
        preferences = self.env.ref("base.view_users_form_simple_modif").id
        preferences_arch = etree.fromstring(self.env["res.users"].get_views([(preferences, "form")])["views"]["form"]["arch"])
        self.assertTrue(preferences_arch.xpath(
            "//div[@name='impact_calendar_connect']/button[@name='action_impact_calendar_connect'][contains(@context, 'toy')]"
        ))
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


def _setup_models(registry, cr):
    """Rebuild the registry's model classes from their definitions (19.0 renamed the method)."""
    setup = getattr(registry, "_setup_models__", None) or registry.setup_models
    setup(cr)


def _add_definition(registry, cr, definition):
    """Add a model definition to a built registry (the 18.0 and 19.0 ways) and set it up."""
    try:
        from odoo.orm.model_classes import add_to_registry  # pylint: disable=import-outside-toplevel
    except ImportError:  # 18.0
        definition._build_model(registry, cr)
    else:
        add_to_registry(registry, definition)
    _setup_models(registry, cr)
    registry.init_models(cr, [definition._name], {}, install=False)


def _base_classes_attribute(model_class):
    return "_base_classes__" if hasattr(model_class, "_base_classes__") else "_BaseModel__base_classes"


@tagged("post_install", "-at_install")
class TestToyProviderInOdoo(HttpCase):
    """The toy provider (``tests/toy_provider/toy``), discovered at test time: the registry
    rebuild that a server restart would make adds its Settings fields; the rest is generated."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        add_students(cls, "Toy Student", 2, days=4)

    def setUp(self):
        super().setUp()
        providers.discover(TOY_PACKAGE, [TOY_FOLDER])
        self.addCleanup(providers.REGISTRY.pop, "toy", None)
        self.toy = importlib.import_module(f"{TOY_PACKAGE}.toy")
        self.addCleanup(self.toy.STORE.clear)
        self.add_toy_settings_fields()
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("impact_calendar.toy_client_id", "toy-id")
        params.set_param("impact_calendar.toy_client_secret", "toy-secret")
        self.member = make_user(self.env, "toymember", integration=True)
        self.member.password = "toymember-Passw0rd"

    def add_toy_settings_fields(self):
        """What the next registry build does with the toy registered: the Settings model gets its
        generated fields. Undone after the test, so that other tests see the usual registry."""
        registry = self.registry
        settings_class = registry["res.config.settings"]
        attribute = _base_classes_attribute(settings_class)
        bases = getattr(settings_class, attribute)

        def restore():
            setattr(settings_class, attribute, bases)
            _setup_models(registry, self.env.cr)

        self.addCleanup(restore)
        definition = type("ToySettings", (models.TransientModel,), {
            "_name": "res.config.settings",
            "_inherit": ["res.config.settings"],
            "_module": "impact_calendar_integration",
            "_register": False,
            **_provider_fields([providers.get("toy")]),
        })
        _add_definition(registry, self.env.cr, definition)

    def form_arch(self, model, view=False):
        return etree.fromstring(model.get_views([(view, "form")])["views"]["form"]["arch"])

    def test_it_shows_in_settings_from_its_declarations(self):
        settings = self.env["res.config.settings"]
        for setting in providers.get("toy").settings:
            field = settings._fields[f"impact_calendar_toy_{setting.name}"]
            self.assertEqual((field.config_parameter, field.string), (f"impact_calendar.toy_{setting.name}", setting.label))
        arch = self.form_arch(settings)
        block = arch.xpath("//block[@name='impact_calendar_setting_container']/setting[@id='impact_calendar_toy']")
        self.assertEqual(len(block), 1, "one generated block for the toy")
        self.assertEqual(block[0].get("string"), "Toy Calendar")
        self.assertEqual(block[0].xpath(".//field/@name"), [
            "impact_calendar_toy_client_id", "impact_calendar_toy_client_secret", "impact_calendar_toy_redirect_uri",
        ])
        self.assertEqual(block[0].xpath(".//field[@name='impact_calendar_toy_client_secret']/@password"), ["True"])
        self.assertEqual(block[0].xpath(".//field[@name='impact_calendar_toy_redirect_uri']/@widget"), ["CopyClipboardChar"])
        # Its advanced setting goes with the endpoints (debug mode only, as the others').
        raw, _view = settings._get_view(view_type="form")
        self.assertEqual(len(raw.xpath(
            "//setting[@id='impact_calendar_endpoints']//div[@name='impact_calendar_endpoint_fields']"
            "//field[@name='impact_calendar_toy_endpoint']"
        )), 1)
        # A provider with a fragment of its own keeps it: nothing is generated twice.
        for provider in providers.entries():
            for setting in provider.settings:
                name = provider.setting_field(setting)
                self.assertEqual(len(raw.xpath(f"//field[@name='{name}']")), 1, name)
        self.assertEqual(len(raw.xpath("//setting[starts-with(@id, 'impact_calendar_') and not(@id='impact_calendar_toy')]"
                                       "//field[starts-with(@name, 'impact_calendar_toy_')]")), 1, "only the endpoint")
        # Its fields save into its system parameters, like any setting.
        settings.create({"impact_calendar_toy_client_id": "another-toy-id"}).execute()
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("impact_calendar.toy_client_id"), "another-toy-id")
        self.assertEqual(settings.create({}).impact_calendar_toy_redirect_uri,
                         self.env["impact.calendar.account"]._redirect_uri("toy"))

    def test_it_shows_in_preferences_and_its_button_starts_its_flow(self):
        users = self.env["res.users"].with_user(self.member)
        arch = self.form_arch(users, self.env.ref("base.view_users_form_simple_modif").id)
        connect = arch.xpath("//div[@name='impact_calendar_connect']/button[@name='action_impact_calendar_connect']")
        self.assertEqual([button.get("string") for button in connect], ["Connect Toy Calendar"])
        self.assertEqual(eval(connect[0].get("context")), {"impact_calendar_provider": "toy"})  # pylint: disable=eval-used
        reconnect = arch.xpath("//button[@name='action_impact_calendar_connect'][@string='Reconnect']")
        self.assertEqual(len(reconnect), 1)
        self.assertIn("impact_calendar_provider != 'toy'", reconnect[0].get("invisible"))
        # The built-in providers keep their own buttons only.
        for provider in providers.entries():
            if provider.name != "toy":
                self.assertTrue(arch.xpath(f"//div[@name='impact_calendar_connect']/button[@name='action_impact_calendar_connect_{provider.name}']"))
        member = users.browse(self.member.id)
        action = member.with_context(impact_calendar_provider="toy").action_impact_calendar_connect()
        self.assertEqual(action["url"], "/impact_calendar/oauth/toy/start?destination=dedicated")
        with self.assertRaises(UserError):
            member.with_context(impact_calendar_provider="nosuch").action_impact_calendar_connect()
        other = make_user(self.env, "toyother", integration=True)
        with self.assertRaisesRegex(Exception, "Only you"):
            other.with_user(self.member).with_context(impact_calendar_provider="toy").action_impact_calendar_connect()

    def test_it_connects_through_the_routes_and_pushes_through_the_engine(self):
        self.authenticate("toymember", "toymember-Passw0rd")
        response = self.url_open("/impact_calendar/oauth/toy/start", allow_redirects=False)
        self.assertIn(response.status_code, (302, 303), response.text[:300])
        state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
        response = self.url_open(f"/impact_calendar/oauth/toy/callback?state={state}&code=mbx1", allow_redirects=False)
        self.assertIn(response.status_code, (302, 303), response.text[:300])
        account = self.env["impact.calendar.account"].sudo().search([("user_id", "=", self.member.id)])
        self.assertEqual((account.provider, account.email, account.state), ("toy", "mbx1@toy.example", "connected"))
        self.assertEqual(self.member.impact_calendar_provider, "toy")

        event = create_class(self.env, self.member, self.students[:1], self.start, timedelta(hours=1), name="Toy pottery")
        self.push()
        calendar = self.toy.STORE["mbx1"]
        self.assertEqual([body["title"] for body in calendar.values()], ["Toy pottery"])
        self.assertEqual(next(iter(calendar.values()))["start"][:16], self.start.isoformat()[:16])

        event.write({"partner_ids": [Command.unlink(self.students[0].id)]})
        self.push()
        self.assertEqual(self.toy.STORE["mbx1"], {}, "no student left: the class is gone from the toy calendar")

    def push(self):
        """What a commit and a cron run do (``sync_common.SyncCase.push``)."""
        self.env.cr.flush()
        self.env["impact.calendar.link"]._fold_changes()
        self.env["impact.calendar.synchronizer"]._drain()
