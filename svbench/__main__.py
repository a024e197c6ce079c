import sys

from svbench.cli import main

sys.exit(main())
