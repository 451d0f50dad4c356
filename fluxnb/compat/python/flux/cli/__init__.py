"""``flux.cli``: pieces of flux-core's command line tools."""
