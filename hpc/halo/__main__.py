from hpc.core import run
from hpc.halo.app import main

run(main)
