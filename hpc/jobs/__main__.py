import sys

from hpc.jobs.cli import entry

sys.exit(entry())
