"""hpc.train: Megatron-LM style tensor x pipeline x data parallel GPT training over mpi4py."""
