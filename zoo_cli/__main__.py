"""`python -m zoo_cli ...`: the `zoo` command without its console script."""

import sys

from zoo_cli.main import main

sys.exit(main())
