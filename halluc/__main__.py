import sys
from halluc.cli import main

sys.exit(main())
