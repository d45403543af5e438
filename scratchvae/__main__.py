"""``python -m scratchvae``: the same as the ``scratchvae`` command."""

import sys

from .cli import main

sys.exit(main())
