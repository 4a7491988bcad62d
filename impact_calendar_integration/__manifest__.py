# Copyright 2026 IMPACT
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "IMPACT Calendar Integration",
    "summary": "Push booked classes one-way into each instructor's Google or Outlook calendar",
    "version": "1.0.2",
    "category": "Productivity/Calendar",
    "website": "https://github.com/impact/impact_calendar_integration",
    "author": "IMPACT",
    "maintainers": ["impact"],
    "license": "LGPL-3",
    "development_status": "Beta",
    "application": False,
    "installable": True,
    "uninstall_hook": "uninstall_hook",
    "depends": ["calendar", "mail"],
    "external_dependencies": {
        "python": ["google-api-python-client", "msal", "requests", "cryptography", "icalendar"],
    },
    "data": [
        "security/impact_calendar_security.xml",
        "security/ir.model.access.csv",
        "providers/caldav/security/ir.model.access.csv",
        "providers/caldav/security/caldav_security.xml",
        "data/ir_config_parameter.xml",
        "data/ir_cron.xml",
        "data/ir_actions.xml",
        "wizards/impact_calendar_disconnect_views.xml",
        "views/impact_calendar_account_views.xml",
        "views/impact_calendar_link_views.xml",
        "views/res_users_views.xml",
        "views/res_users_feed_views.xml",
        "views/res_config_settings_views.xml",
        # Each provider's view fragments (the manifest may name providers).
        "providers/google/views/google_views.xml",
        "providers/microsoft/views/microsoft_views.xml",
        "providers/caldav/views/caldav_views.xml",
        "providers/caldav/views/impact_calendar_caldav_wizard_views.xml",
        "views/impact_calendar_menus.xml",
        "data/impact_calendar_attention_data.xml",
        "views/impact_calendar_attention_views.xml",
    ],
    "demo": [
        "demo/impact_calendar_demo.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "impact_calendar_integration/static/tests/tours/*.js",
        ],
    },
}
