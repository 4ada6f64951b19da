from hpc.core import run
from hpc.stream.app import main

run(main)
