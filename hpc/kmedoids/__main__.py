from hpc.core import run
from hpc.kmedoids.app import main

run(main)
