"""Pure-Python sync core: provider clients, OAuth, payload mapping, retry policy, token vault.

Nothing under this package imports ``odoo``: the repository's pytest suite runs it on a machine
without Odoo, against loopback emulators of Google and Microsoft.
"""

import warnings

# google-api-core warns at import about the interpreter's future end of support; on Odoo 18's
# Python that notice would be logged with a traceback on every server start.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\.")
