from hpc.core import run
from hpc.spgemm.app import main

run(main)
