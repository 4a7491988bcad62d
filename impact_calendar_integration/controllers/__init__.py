from . import main
from . import feed
