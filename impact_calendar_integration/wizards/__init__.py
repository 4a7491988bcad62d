from . import impact_calendar_disconnect
from . import impact_calendar_caldav_wizard
