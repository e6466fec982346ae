import sys

from racing.cli import main

sys.exit(main())
