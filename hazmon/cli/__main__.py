"""`python -m hazmon.cli`: the same as the `hazmon` console script."""

import sys

from hazmon.cli.main import main

sys.exit(main())
