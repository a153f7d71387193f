"""Caches: tag arrays with replacement state, and the cache component that wraps a downstream memory."""
