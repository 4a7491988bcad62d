# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from lxml import etree

from odoo.tests import HttpCase, TransactionCase, tagged

from .common import connect_offline, make_user


@tagged("post_install", "-at_install")
class TestPreferences(TransactionCase):
    def _preferences_arch(self, user):
        view = self.env.ref("base.view_users_form_simple_modif")
        result = self.env["res.users"].with_user(user).get_views([(view.id, "form")])
        return etree.fromstring(result["views"]["form"]["arch"])

    def test_member_sees_external_page_with_both_integrations(self):
        member = make_user(self.env, "member")
        arch = self._preferences_arch(member)
        page = arch.xpath("//page[@name='impact_calendar_external']")
        self.assertEqual(len(page), 1)
        self.assertEqual(page[0].get("string"), "External")
        self.assertTrue(page[0].xpath(".//group[@string='External Calendar']"))
        buttons = {b.get("name") for b in page[0].xpath(".//button")}
        self.assertIn("action_impact_calendar_connect_google", buttons)
        self.assertIn("action_impact_calendar_connect_microsoft", buttons)
        self.assertIn("action_impact_calendar_disconnect", buttons)
        self.assertIn("action_impact_calendar_resync", buttons)
        self.assertIn("one-way", etree.tostring(page[0], encoding="unicode"))

    def test_non_member_sees_nothing_of_it(self):
        outsider = make_user(self.env, "outsider", integration=False)
        arch = self._preferences_arch(outsider)
        self.assertFalse(arch.xpath("//page[@name='impact_calendar_external']"))
        self.assertFalse(arch.xpath("//field[starts-with(@name, 'impact_calendar')]"))

    def test_member_reads_own_status_from_preferences(self):
        member = make_user(self.env, "member")
        connect_offline(member, email="member@gmail.example")
        values = member.with_user(member).read(
            ["impact_calendar_email", "impact_calendar_state", "impact_calendar_provider", "impact_calendar_connected_at"]
        )[0]
        self.assertEqual(values["impact_calendar_email"], "member@gmail.example")
        self.assertEqual(values["impact_calendar_state"], "connected")
        self.assertEqual(values["impact_calendar_provider"], "google")
        self.assertTrue(values["impact_calendar_connected_at"])

    def test_landing_page_after_connect_opens_own_preferences(self):
        member = make_user(self.env, "member")
        action = self.env.ref("impact_calendar_integration.action_my_external_calendar").with_user(member).run()
        self.assertEqual((action["res_model"], action["res_id"]), ("res.users", member.id))
        self.assertEqual(action["views"][0][0], self.env.ref("base.view_users_form_simple_modif").id)

    def test_connect_button_opens_the_start_route(self):
        member = make_user(self.env, "member")
        action = member.with_user(member).action_impact_calendar_connect_microsoft()
        # A dedicated calendar unless the member chose otherwise (test_dedicated covers the choice).
        self.assertEqual(action["url"], "/impact_calendar/oauth/microsoft/start?destination=dedicated")

    def test_admin_user_form_shows_status_read_only(self):
        admin = self.env.ref("base.user_admin")
        view = self.env.ref("base.view_users_form")
        arch = etree.fromstring(self.env["res.users"].with_user(admin).get_views([(view.id, "form")])["views"]["form"]["arch"])
        fields = arch.xpath("//page[@name='impact_calendar_external']//field")
        self.assertTrue(fields)
        self.assertTrue(all(f.get("readonly") in ("1", "True") for f in fields))


@tagged("post_install", "-at_install")
class TestPreferencesTour(HttpCase):
    """What a person sees in the browser when opening Preferences."""

    def test_member_sees_external_tab(self):
        member = make_user(self.env, "tourmember")
        member.password = "tourmember"  # browser_js logs in with password = login
        self.start_tour("/odoo", "impact_calendar_preferences_member", login="tourmember")

    def test_outsider_sees_nothing_of_it(self):
        outsider = make_user(self.env, "touroutsider", integration=False)
        outsider.password = "touroutsider"
        self.start_tour("/odoo", "impact_calendar_preferences_outsider", login="touroutsider")
