"""`python -m mlgov`: the same as the `mlgov` command."""

import sys

from mlgov.cli import main

sys.exit(main())
