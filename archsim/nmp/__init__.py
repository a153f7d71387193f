"""Near-memory processing in DRAM: RecNMP-style rank-level units (ReCross cross-level units build on them)."""
