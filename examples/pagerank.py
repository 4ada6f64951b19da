"""PageRank of an edge list with hpc.pagerank, checked against networkx when it is installed.

    python examples/pagerank.py                 # one process
    mpiexec -n 4 python examples/pagerank.py    # the same call, four ranks share the work

The edge list is a NumPy array given identically on every rank; the scores come back on
every rank, entry i for vertex i. Then the personalized PageRank of two vertices (PowerWalk).
"""
import numpy as np
from mpi4py import MPI

import hpc.pagerank

# A small directed graph: a random graph on 500 vertices (a fixed seed, so every rank builds
# the same array), one vertex without out-edges (dangling) and an edge from 0 to the last id.
rng = np.random.default_rng(42)
edges = rng.integers(0, 500, size=(3000, 2))
edges = edges[edges[:, 0] != 7]                     # vertex 7: no out-edges
edges = np.vstack([edges, [[0, 499]]])

scores = hpc.pagerank.pagerank(edges, alpha=0.85)   # networkx's semantics and stopping rule
top = np.argsort(scores)[::-1][:5]
say = print if MPI.COMM_WORLD.rank == 0 else (lambda *a, **k: None)
say("top vertices:", ", ".join(f"{v} ({scores[v]:.4f})" for v in top))

best = hpc.pagerank.personalized(edges, [0, 1], topk=3)
for s, ids, sc in zip([0, 1], best.ids, best.scores):
    say(f"personalized from {s}:", ", ".join(f"{v} ({x:.3f})" for v, x in zip(ids, sc) if v >= 0))

try:
    import networkx as nx
except ImportError:
    say("networkx not installed: no check")
else:
    G = nx.DiGraph()
    G.add_nodes_from(range(int(edges.max()) + 1))
    G.add_edges_from(edges.tolist())
    ref = nx.pagerank(G, alpha=0.85)
    err = max(abs(scores[v] - ref[v]) for v in G)
    say(f"{'VALID' if err < 1e-10 else 'INVALID'}: max |hpc - networkx| = {err:.2e}")
    raise SystemExit(0 if err < 1e-10 else 1)
