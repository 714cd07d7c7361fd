"""``python -m agent``: the same as ``pdh`` (what the Windows service and login item run)."""

import sys

from agent.cli.main import main

sys.exit(main())
