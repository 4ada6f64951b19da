"""SpGEMM: SMASH-style hash sparse matrix-matrix products, native and distributed (see app.py)."""
