"""fluxnb."""
