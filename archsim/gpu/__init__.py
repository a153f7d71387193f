"""GPU model (issue #14): SMs with L1 and a partitioned L2 of sector caches over HBM from the DRAM model, running
PyTorch's EmbeddingBag kernel at the level of memory requests per warp (docs/gpu.md)."""
