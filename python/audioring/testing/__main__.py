"""``python -m audioring.testing``: start or stop private audio servers."""

import sys

from ._servers import main

sys.exit(main())
