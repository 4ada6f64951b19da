"""k-medoids clustering of a NumPy array with hpc.kmedoids, checked against the `kmedoids`
package when it is installed.

    python examples/kmedoids_clustering.py                 # one process
    mpiexec -n 4 python examples/kmedoids_clustering.py    # the same call, four ranks share the work

The points are a NumPy array given identically on every rank; the medoids, labels and loss
come back on every rank (scikit-learn's estimator protocol).
"""
import numpy as np
from mpi4py import MPI

from hpc.kmedoids import KMedoids

# 600 points around 5 centres in 4-D (a fixed seed, so every rank builds the same array).
rng = np.random.default_rng(0)
centres = rng.uniform(-10, 10, size=(5, 4))
X = centres[rng.integers(0, 5, size=600)] + rng.standard_normal((600, 4))

km = KMedoids(n_clusters=5, method="fasterpam", init="build").fit(X)
say = print if MPI.COMM_WORLD.rank == 0 else (lambda *a, **k: None)
say(f"loss {km.inertia_:.6f}, {km.n_iter_} iterations, medoids {km.medoid_indices_.tolist()}")
say("cluster sizes:", np.bincount(km.labels_, minlength=5).tolist())
say("the first three points belong to clusters", km.predict(X[:3]).tolist())

try:
    import kmedoids  # the python-kmedoids package, the reference
except ImportError:
    say("kmedoids not installed: no check")
else:
    from scipy.spatial.distance import cdist

    ref = kmedoids.fasterpam(cdist(X, X), 5, init="build", n_cpu=1)
    err = abs(km.inertia_ - ref.loss) / ref.loss
    ok = err < 1e-9 and sorted(km.medoid_indices_.tolist()) == sorted(ref.medoids.tolist())
    say(f"{'VALID' if ok else 'INVALID'}: loss {km.inertia_:.6f} vs kmedoids.fasterpam "
        f"{ref.loss:.6f} (relative difference {err:.1e})")

    # k chosen by the medoid silhouette (DynMSC, k from 2 to 8), and the silhouettes
    from hpc.kmedoids import dynmsc, silhouette

    D = cdist(X, X)
    best = dynmsc(D, 8, minimum_k=2, init="build")
    rdyn = kmedoids.dynmsc(D, 8, minimum_k=2, init="build")
    sil = silhouette(D, best.labels)[0]
    ok = best.bestk == rdyn.bestk and abs(best.loss - rdyn.loss) < 1e-12
    say(f"{'VALID' if ok else 'INVALID'}: DynMSC chose k={best.bestk} (kmedoids.dynmsc: "
        f"{rdyn.bestk}), average medoid silhouette {best.loss:.6f}, silhouette {sil:.6f}")
