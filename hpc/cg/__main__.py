from hpc.core import run
from hpc.cg.app import main

run(main)
