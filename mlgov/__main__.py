"""`python -m mlgov`: the same as the `mlgov` command."""

import sys

from cli.main import main

sys.exit(main())
