"""`python -m netwarden` is the `netwarden` command."""

import sys

from netwarden.cli import main

sys.exit(main())
