"""``python -m scratchvae``: the same as the ``scratchvae`` command (its floating-point mode included)."""

import sys

from scratchvae.tools.start import main

sys.exit(main())
