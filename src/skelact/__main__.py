"""``python -m skelact`` is the ``skelact`` command."""

import sys

from skelact.cli import main

sys.exit(main())
