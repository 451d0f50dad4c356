"""``flux.constraint``: RFC 35 constraint query syntax."""
