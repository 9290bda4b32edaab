"""``python -m m4ml_xp.cli``: the ``m4ml-xp`` command line."""

import sys

from m4ml_xp.cli import main

sys.exit(main())
