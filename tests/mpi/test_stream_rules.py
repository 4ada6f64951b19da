"""Placement and the cache share across ranks (run at 1-4 ranks by tools/run_tests.sh)."""
from __future__ import annotations

import os

import pytest
from mpi4py import MPI

from hpc.stream import rules

comm = MPI.COMM_WORLD


@pytest.mark.mpi
def test_shared_cores_are_the_overlapping_affinity_masks():
    got = rules.placement(comm)
    assert [r["rank"] for r in got["ranks"]] == list(range(comm.size))
    masks = comm.allgather((MPI.Get_processor_name(), set(os.sched_getaffinity(0))))
    overlap = any(masks[i][0] == masks[j][0] and masks[i][1] & masks[j][1]
                  for i in range(comm.size) for j in range(i + 1, comm.size))
    assert bool(got["shared_cores"]) == overlap


@pytest.mark.mpi
def test_the_cache_is_shared_among_the_ranks_that_use_it(monkeypatch):
    monkeypatch.setattr(rules, "llc_instances", lambda cpus: {"0-63": 64 << 20})
    got = rules.llc_share(comm)
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    on_host = node.Get_size()
    node.Free()
    assert got["ranks_sharing"] == on_host
    assert got["share_bytes"] == (64 << 20) // on_host
