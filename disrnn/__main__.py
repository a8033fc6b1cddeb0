"""``python -m disrnn``: the ``disrnn`` command."""

import sys

from disrnn.cli import main

sys.exit(main())
