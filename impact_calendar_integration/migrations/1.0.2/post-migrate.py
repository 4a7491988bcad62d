# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Calendars a connect made (kept in the tokens) become the accounts' dedicated calendars."""
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["impact.calendar.account"]._adopt_connect_calendars()
