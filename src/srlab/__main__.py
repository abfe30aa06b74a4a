"""``python -m srlab ...`` (and ``torchrun -m srlab train ...``)."""

import sys

from srlab.cli import main

sys.exit(main())
