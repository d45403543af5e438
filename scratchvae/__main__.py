"""``python -m scratchvae``: the same as the ``scratchvae`` command."""

import sys

from scratchvae.tools.cli import main

sys.exit(main())
