# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Feed tokens out of the server's own log.

The feed URL is its password, and the database keeps only its hash; the request log line
(``"GET /impact_calendar/feed/<token>.ics HTTP/1.1" 200 -``) would write the token itself on
every poll. A filter on the loggers that write request lines rewrites the path before any
handler sees the record. Proxies in front of Odoo keep their own logs: the readme says how to
redact them.
"""

import logging
import re

from . import compat

FEED_PREFIX = "/impact_calendar/feed/"
# Whatever follows the prefix up to the end of the path (a token, or a wrong guess at one).
FEED_PATH = re.compile(re.escape(FEED_PREFIX) + r"[^\s\"'?#]*")
REDACTED = FEED_PREFIX + "<redacted>.ics"


def redact(value):
    """``value`` with any feed token replaced (values that are not text unchanged)."""
    if isinstance(value, str) and FEED_PREFIX in value:
        return FEED_PATH.sub(REDACTED, value)
    return value


class FeedTokenFilter(logging.Filter):
    """Rewrites feed paths in a record's message and arguments; drops nothing."""

    def filter(self, record):
        record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(arg) for key, arg in record.args.items()}
        return True


def install():
    """Add the filter once to each logger that writes request lines."""
    for name in compat.REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(type(existing).__name__ == FeedTokenFilter.__name__ for existing in logger.filters):
            logger.addFilter(FeedTokenFilter())
