import sys

from hpc.scaling.cli import entry

sys.exit(entry())
