from hpc.core import run

from .app import main

run(main)
