"""The collector's thresholds: raised in processes of brokers, a user's own choice kept."""

from __future__ import annotations

import gc

import pytest

from fluxnb.runtime.util import gctune


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_defaults_are_raised(thresholds):
    gc.set_threshold(700, 10, 10)
    assert gctune.tune() is True
    assert gc.get_threshold() == gctune.THRESHOLD


def test_a_process_owners_choice_is_kept_unless_forced(thresholds):
    gc.set_threshold(1234, 5, 5)       # e.g. set in a notebook before %flux start
    assert gctune.tune() is False
    assert gc.get_threshold() == (1234, 5, 5)
    assert gctune.tune(force=True) is True   # fluxnb start, a broker's own process
    assert gc.get_threshold() == gctune.THRESHOLD


def test_starting_an_instance_tunes_a_default_process(thresholds):
    from fluxnb import Instance
    gc.set_threshold(700, 10, 10)
    with Instance(test_size=1):
        assert gc.get_threshold() == gctune.THRESHOLD
