from . import test_access
from . import test_settings
from . import test_preferences
from . import test_sync
from . import test_oauth_routes
from . import test_faults
from . import test_rpc_sweep
from . import test_security
