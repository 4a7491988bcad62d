from . import calendar_event
from . import resource_booking
from . import resource_booking_combination
from . import resource_resource
