from . import impact_calendar_caldav_wizard
from . import res_users
