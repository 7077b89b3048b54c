"""`python -m core.cli`, as the tests and some container setups start Marquee."""

import sys

from core.cli import main

sys.exit(main())
