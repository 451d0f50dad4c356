"""``flux.resource``: resource sets (RFC 20) and the instance's resources."""

from flux.resource.ResourceSet import ResourceSet

__all__ = ["ResourceSet"]
