import sys

from router.ops.cli import main

sys.exit(main())
