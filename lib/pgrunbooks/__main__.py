import sys

from pgrunbooks.cli import main

sys.exit(main())
