"""Freezing what start-up made, so the collector's full passes stop walking it (service.runtime.collector)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from service.runtime.collector import freeze_long_lived, refreeze


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_freeze_moves_live_objects_out_of_the_collectors_reach(unfrozen_afterwards: None) -> None:
    kept = [[index] for index in range(10_000)]
    assert id(kept[0]) in {id(o) for o in gc.get_objects()}
    frozen = freeze_long_lived()
    assert frozen >= len(kept)
    assert id(kept[0]) not in {id(o) for o in gc.get_objects()}


def test_refreeze_collects_cycles_that_were_frozen(unfrozen_afterwards: None) -> None:
    class Node:
        partner: object = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    alive = weakref.ref(first)
    freeze_long_lived()
    del first, second
    gc.collect()
    assert alive() is not None, "a normal pass reached a frozen cycle"
    refreeze()
    assert alive() is None
    assert gc.get_freeze_count() > 0
