"""`python -m hpc`: the workloads in this suite and the back ends available on this machine."""
from __future__ import annotations

import importlib.util
import sys

from hpc import WORKLOADS, __version__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("Run one with: mpiexec -n N python -m hpc.<app> --help")
        return 0
    from hpc.core import backends

    print(f"hpc {__version__}: an MPI-parallel HPC application suite\n")
    print("Workloads (mpiexec -n N python -m hpc.<app>):")
    for name, what in WORKLOADS.items():
        present = importlib.util.find_spec(f"hpc.{name}") is not None
        print(f"  {name:<10} {'' if present else '[not in this build] '}{what}")
    print("  suite      every workload at laptop size, one VALID/INVALID table")
    print("  scaling    strong and weak scaling studies, plots and models")
    print("  jobs       SLURM job scripts for every workload")
    print("\nBack ends on this machine:")
    for name, b in backends.REGISTRY.items():
        why = backends.why_unavailable(name)
        extra = ""
        if name == "kokkos" and why is None:
            from hpc import _kokkos

            extra = f" [execution space: {_kokkos.execution_space}]"
        print(f"  {name:<8} {'yes' if why is None else 'no '}  {b.description}{extra}"
              + (f"  ({why})" if why else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
