"""``python -m xgrad``: the same as the ``xgrad`` command."""

import sys

from xgrad._cli.main import main

sys.exit(main())
