import sys

from vidapter.cli import main

sys.exit(main())
