"""`python -m approxmlp ...`: the command line, through the interpreter that runs it
(no need for the `approxmlp` script to be on PATH)."""

import sys

from .cli import main

sys.exit(main())
