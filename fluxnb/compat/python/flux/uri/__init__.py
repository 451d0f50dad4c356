"""``flux.uri``: Flux instance URIs (``local://PATH``, ``ssh://HOST/PATH``)."""

from __future__ import annotations

import os
import platform
import re
from urllib.parse import urlparse

__all__ = ["URI", "JobURI"]


class URI:
    """A URI split into ``scheme``, ``netloc``, ``path``, ``params``,
    ``query`` and ``fragment`` (as :func:`urllib.parse.urlparse`)."""

    def __init__(self, uri):
        if not isinstance(uri, str):
            raise TypeError(f"URI must be a str, not {type(uri).__name__}")
        self.uri = uri
        parts = urlparse(uri)
        self.scheme, self.netloc, self.path = parts.scheme, parts.netloc, parts.path
        self.params, self.query, self.fragment = parts.params, parts.query, parts.fragment

    def __str__(self):
        return self.uri

    def __repr__(self):
        return f"{type(self).__name__}('{self.uri}')"


class JobURI(URI):
    """The URI of a Flux instance, with its ``remote`` (``ssh://``) and
    ``local`` (``local://``) forms.

    >>> JobURI("ssh://host/tmp/x").local
    'local:///tmp/x'
    """

    force_local = os.environ.get("FLUX_URI_RESOLVE_LOCAL", False)

    def __init__(self, uri, remote_hostname=None):
        super().__init__(uri)
        if not self.scheme:
            raise ValueError(f"JobURI '{uri}' does not have a valid scheme")
        self.path = re.sub("/+", "/", self.path)
        self.remote_hostname = remote_hostname

    @property
    def remote(self):
        if self.scheme == "ssh":
            return self.uri
        if self.scheme == "local":
            host = self.remote_hostname or platform.uname()[1]
            return f"ssh://{host}{self.path}"
        raise ValueError(f"Cannot convert JobURI with scheme {self.scheme} to remote")

    @property
    def local(self):
        if self.scheme == "local":
            return self.uri
        if self.scheme == "ssh":
            return f"local://{self.path}"
        raise ValueError(f"Cannot convert JobURI with scheme {self.scheme} to local")

    def __str__(self):
        return self.local if self.force_local else self.uri
