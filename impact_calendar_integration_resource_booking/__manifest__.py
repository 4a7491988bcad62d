# Copyright 2026 IMPACT
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "IMPACT Calendar Integration - Resource Booking",
    "summary": "Bookings of OCA resource_booking reach the booked teachers' own calendars",
    "version": "1.0.0",
    "category": "Productivity/Calendar",
    "website": "https://github.com/impact/impact_calendar_integration",
    "author": "IMPACT",
    "maintainers": ["impact"],
    "license": "LGPL-3",
    "development_status": "Beta",
    "application": False,
    "installable": True,
    "auto_install": True,
    "depends": ["impact_calendar_integration", "resource_booking"],
}
