from . import impact_calendar_disconnect
