import sys

from pivox.cli import main

sys.exit(main())
