"""`python -m app.cli`: the `mosaic` command."""

import sys

from app.cli import main

sys.exit(main())
