"""k-medoids clustering: PAM, FastPAM1/2, FasterPAM, FastCLARA and FastCLARANS, MPI-parallel.

Schubert & Rousseeuw, "Fast and Eager k-Medoids Clustering: O(k) Runtime Improvement of the
PAM, CLARA, and CLARANS Algorithms", Information Systems 101 (2021). See app.py for the CLI and
algorithms.py for the distributed design.
"""
