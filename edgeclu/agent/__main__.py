"""``python3 -m edgeclu.agent [--config FILE] [--once]``."""

import sys

from edgeclu.agent.main import main

sys.exit(main())
