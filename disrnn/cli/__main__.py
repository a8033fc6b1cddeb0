"""``python -m disrnn.cli``: the ``disrnn`` command."""

import sys

from disrnn.cli import main

sys.exit(main())
