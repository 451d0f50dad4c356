"""Fixtures of the CLI tests: the shared instance's environment and a handle to it."""

import pytest


@pytest.fixture(scope="module")
def env(instance):
    """Environment of a process inside the module's instance (FLUX_URI, the flux shim)."""
    return instance.environ(0)


@pytest.fixture(scope="module")
def h(instance):
    from fluxnb import Flux
    with Flux(instance.uri) as handle:
        yield handle
