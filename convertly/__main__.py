import sys

from convertly.cli import main

sys.exit(main())
