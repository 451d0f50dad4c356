"""``flux.shape``: RFC 46 job shape syntax."""
