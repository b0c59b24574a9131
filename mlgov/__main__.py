"""`python -m mlgov`: the same as the `mlgov` command."""

import sys

from deployments.cli.main import main

sys.exit(main())
