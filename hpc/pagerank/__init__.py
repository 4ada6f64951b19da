"""hpc.pagerank: distributed PageRank and PowerWalk personalized PageRank (see app.py)."""
