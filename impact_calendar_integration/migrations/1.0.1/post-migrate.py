# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""1.0.1: the database keeps only the feed token's hash. Drop the encrypted tokens of 1.0.0
explicitly: Odoo's own cleanup of a removed field is skipped in some runs (``import_partial``).
Feed URLs keep working; their owners see them no more (Regenerate gives a new one)."""


def migrate(cr, version):
    if not version:
        return
    cr.execute("ALTER TABLE impact_calendar_feed DROP COLUMN IF EXISTS token_secret")
