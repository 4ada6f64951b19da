"""PageRank of an edge list with hpc.pagerank, checked against networkx when it is installed.

    python examples/pagerank.py                 # one process
    mpiexec -n 4 python examples/pagerank.py    # the same call, four ranks share the work

The edge list is a NumPy array given identically on every rank; the scores come back on
every rank, entry i for vertex i. Then a weighted, personalized run with networkx's argument
names, and the personalized PageRank of two vertices (PowerWalk).
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

# The variants take networkx's names: edge weights (a third column), a teleport
# (personalization) distribution and where dangling mass goes.
weights = 1.0 + (edges[:, 0] * 7 + edges[:, 1]) % 5            # deterministic, in [1, 5]
teleport = {0: 1.0, 1: 1.0, 2: 2.0}
wscores = hpc.pagerank.pagerank(np.column_stack([edges, weights]), 0.85, teleport,
                                weight="weight", dangling={3: 1.0})

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
    W = nx.DiGraph()
    W.add_nodes_from(G)
    W.add_weighted_edges_from((int(u), int(v), float(w)) for (u, v), w in zip(edges, weights))
    wref = nx.pagerank(W, alpha=0.85, personalization=teleport, dangling={3: 1.0})
    err = max(err, max(abs(wscores[v] - wref[v]) for v in W))
    say(f"{'VALID' if err < 1e-10 else 'INVALID'}: max |hpc - networkx| = {err:.2e} "
        "(plain and weighted + personalized)")
    raise SystemExit(0 if err < 1e-10 else 1)
