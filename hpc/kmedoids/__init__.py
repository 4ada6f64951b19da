"""k-medoids clustering: PAM, FastPAM1/2, FasterPAM, FastCLARA and FastCLARANS, MPI-parallel.

Schubert & Rousseeuw, "Fast and Eager k-Medoids Clustering: O(k) Runtime Improvement of the
PAM, CLARA, and CLARANS Algorithms", Information Systems 101 (2021).

The public API (:mod:`hpc.kmedoids.api`): the scikit-learn style estimator :class:`KMedoids`
and the functions of the `kmedoids` package (:func:`fasterpam`, :func:`fastpam1`,
:func:`pam`, :func:`pam_build`, plus :func:`fastpam2`, :func:`clara`, :func:`clarans`)
returning a :class:`KMedoidsResult`. They take a NumPy array given identically on every rank
and work in one process or under ``mpiexec``. ``python -m hpc.kmedoids`` is the command line
(app.py); algorithms.py holds the distributed design.
"""
from .api import (KMedoids, KMedoidsResult, clara, clarans, fasterpam, fastpam1, fastpam2, pam,
                  pam_build)

__all__ = ["KMedoids", "KMedoidsResult", "fasterpam", "fastpam1", "fastpam2", "pam", "pam_build",
           "clara", "clarans"]
