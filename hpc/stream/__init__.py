"""STREAM: BabelStream's kernels with one interface and many back ends (see app.py)."""
