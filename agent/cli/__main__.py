"""``python -m agent.cli``: the same as ``pdh``."""

import sys

from agent.cli.main import main

sys.exit(main())
