"""``python -m xgrad``: the same as the ``xgrad`` command."""

import sys

from xgrad._cli import main

sys.exit(main())
