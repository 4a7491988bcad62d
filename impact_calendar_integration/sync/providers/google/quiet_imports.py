"""Imported first by the package: google-api-core warns at import about the interpreter's
future end of support; on Odoo 18's Python that notice would be logged with a traceback on every
server start."""

import warnings

warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\.")
