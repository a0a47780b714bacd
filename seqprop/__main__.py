import sys

from seqprop.cli import main

sys.exit(main())
