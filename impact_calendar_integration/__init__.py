from . import controllers
from . import models
from . import wizards
from . import providers


def uninstall_hook(env):
    """The database functions the booking side made go with the addon."""
    models.impact_calendar_link_append.drop_append_functions(env.cr)
