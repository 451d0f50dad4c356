"""DYAD: producer/consumer file streaming through node-local storage (runtime side)."""
