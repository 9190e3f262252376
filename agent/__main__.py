"""``python -m agent``: the same as the ``journeyman`` command."""

import sys

from agent.cli import main

sys.exit(main())
