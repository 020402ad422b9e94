"""Run the command line with `python -m costportal_client`."""

import sys

from .cli import main

sys.exit(main())
