"""``python -m nightshift.demo``: the ``make demo`` driver."""

import sys

from nightshift.demo.driver import main

sys.exit(main())
