# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
from unittest.mock import patch

from odoo.tests import HttpCase, tagged

from ..sync import pacing


@tagged("post_install", "-at_install")
class TestRequestActivity(HttpCase):
    """The requests of the server's process are what the push worker waits out
    (sync/pacing.py; its waiting is tested on a fake clock in tests/test_pacing.py)."""

    def test_a_served_request_is_seen_by_the_worker(self):
        activity = pacing.RequestActivity()
        self.authenticate("admin", "admin")
        with patch.object(pacing, "ACTIVITY", activity):
            self.assertEqual(activity.quiet_for(), float("inf"), "nothing served yet")
            answer = self.url_open(
                "/web/session/get_session_info",
                data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}}),
                headers={"Content-Type": "application/json"},
            )
            self.assertEqual(answer.status_code, 200)
            self.assertLess(activity.quiet_for(), 60, "the request was counted, and has ended")
            self.assertGreater(activity.wait_quiet(idle=0.05), 0, "the worker waits after a request")
