"""hpc.cg: distributed CG solvers (cg, pcg, cg1, pipecg; dcdm) on hpc.sparse matrices.

- :mod:`.app`: the command line (``python -m hpc.cg``) and validation
- :mod:`.methods`: the method and subcommand registry, Problem/SolveOptions/SolveResult
- :mod:`.krylov`: PCG, Chronopoulos-Gear, Ghysels-Vanroose pipelined CG
- :mod:`.precond`, :mod:`.mg`: Jacobi, block Jacobi (SGS / IC(0)), Chebyshev, multigrid
- :mod:`.petsc_backend`: the same solve with petsc4py KSP
"""
