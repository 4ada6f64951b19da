"""k-medoids clustering: PAM, FastPAM1/2, FasterPAM, FastCLARA and FastCLARANS, and the
medoid silhouette methods FastMSC, FasterMSC, DynMSC and PAMMEDSIL, MPI-parallel.

Schubert & Rousseeuw, "Fast and Eager k-Medoids Clustering: O(k) Runtime Improvement of the
PAM, CLARA, and CLARANS Algorithms", Information Systems 101 (2021).

The public API (:mod:`hpc.kmedoids.api`): the scikit-learn style estimator :class:`KMedoids`
and the functions of the `kmedoids` package (:func:`fasterpam`, :func:`fastpam1`,
:func:`pam`, :func:`pam_build`, :func:`fastmsc`, :func:`fastermsc`, :func:`dynmsc`,
:func:`pammedsil`, :func:`silhouette`, :func:`medoid_silhouette`, plus :func:`fastpam2`,
:func:`clara`, :func:`clarans`)
returning a :class:`KMedoidsResult`. They take a NumPy array given identically on every rank
and work in one process or under ``mpiexec``. ``python -m hpc.kmedoids`` is the command line
(app.py); algorithms.py holds the distributed design.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from hpc.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "KMedoids": ".api",
    "KMedoidsResult": ".api",
    "clara": ".api",
    "clarans": ".api",
    "fasterpam": ".api",
    "fastpam1": ".api",
    "fastpam2": ".api",
    "pam": ".api",
    "pam_build": ".api",
    "fastmsc": ".api",
    "alternating": ".api",
    "fastermsc": ".api",
    "pammedsil": ".api",
    "dynmsc": ".api",
    "DynkResult": ".api",
    "silhouette": ".api",
    "medoid_silhouette": ".api",
})
__all__ = ["KMedoids", "KMedoidsResult", "DynkResult", "fasterpam", "fastpam1", "fastpam2", "pam",
           "pam_build", "clara", "clarans", "fastmsc", "fastermsc", "pammedsil", "dynmsc",
           "silhouette", "medoid_silhouette", "alternating"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ resolves these
    from .api import (DynkResult, KMedoids, KMedoidsResult, alternating, clara, clarans, dynmsc,
                      fastermsc,
                      fasterpam, fastmsc, fastpam1, fastpam2, medoid_silhouette, pam, pam_build,
                      pammedsil, silhouette)
