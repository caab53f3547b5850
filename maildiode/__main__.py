import sys

from maildiode.cli import main

sys.exit(main())
