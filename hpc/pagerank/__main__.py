from hpc.core import run
from hpc.pagerank.app import main

run(main)
