"""The repository in-process: leases keep a retired version open, readiness rules, partial failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from service_builders import write_corrupt_model, write_user_model

from service.errors import LoadFailed, ModelNotFound, ModelNotReady
from service.repository.registry import ModelRepository, State
from service.settings import Settings

INPUTS = {
    "a": np.ones((1, 4), np.float32),
    "b": np.ones((1, 4), np.float32),
    "counts": np.array([2], np.int64),
    "words": np.array(["w"], dtype=object),
}


def _repository(root: Path, **settings: object) -> ModelRepository:
    return ModelRepository(Settings(repository=root, **settings))


def test_reload_keeps_leased_old_version_open_until_released(tmp_path: Path) -> None:
    write_user_model(tmp_path, "calc", version=1)

    async def scenario() -> None:
        repository = _repository(tmp_path)
        await repository.load_all()
        with repository.lease("calc") as old:
            write_user_model(tmp_path, "calc", version=2)
            await repository.load("calc")
            assert repository.lookup("calc").version == 2
            assert not old.closed and old.in_flight == 1
            outputs = await old.infer(INPUTS)  # the request in flight finishes on its own session
            np.testing.assert_array_equal(outputs["doubled"], [4])
        assert old.closed
        with pytest.raises(ModelNotReady):
            await old.infer(INPUTS)
        repository.close()

    asyncio.run(scenario())


def test_unleased_old_version_closes_at_swap(tmp_path: Path) -> None:
    write_user_model(tmp_path, "calc")

    async def scenario() -> None:
        repository = _repository(tmp_path)
        await repository.load_all()
        old = repository.lookup("calc")
        await repository.load("calc")
        assert old.closed and repository.lookup("calc") is not old
        repository.close()

    asyncio.run(scenario())


def test_readiness_rules(tmp_path: Path) -> None:
    async def readiness(root: Path, **settings: object) -> tuple[bool, str, dict[str, str]]:
        repository = _repository(root, **settings)
        before = repository.readiness()
        assert not before.ready and before.reason == "models are loading"
        await repository.load_all()
        state = repository.readiness()
        repository.close()
        return state.ready, state.reason, state.models

    empty = tmp_path / "empty"
    empty.mkdir()
    assert asyncio.run(readiness(empty))[:2] == (
        False,
        "no model in the repository (NNSERVE_READY_WHEN_EMPTY=true allows that)",
    )
    assert asyncio.run(readiness(empty, ready_when_empty=True))[0] is True

    mixed = tmp_path / "mixed"
    write_user_model(mixed, "good")
    write_corrupt_model(mixed, "bad")
    ready, reason, models = asyncio.run(readiness(mixed))
    assert not ready and reason == "some models are not ready" and set(models) == {"bad"}
    assert asyncio.run(readiness(mixed, strict_readiness=False))[0] is True


def test_partial_version_failure_serves_the_rest(tmp_path: Path) -> None:
    write_user_model(tmp_path, "calc", version=1)
    write_user_model(tmp_path, "calc", version=2)
    (tmp_path / "calc" / "2" / "model.onnx").write_bytes(b"garbage")
    (tmp_path / "calc" / "config.yaml").write_text("version_policy: all\n")

    async def scenario() -> None:
        repository = _repository(tmp_path)
        await repository.load_all()
        entry = repository.entry("calc")
        assert sorted(entry.served) == [1]
        assert [(s.version, s.state) for s in entry.status] == [(1, State.READY), (2, State.UNAVAILABLE)]
        with pytest.raises(ModelNotReady, match="version 2 is not at ready state"):
            repository.lookup("calc", 2)
        with pytest.raises(ModelNotFound, match="version 3 is not found"):
            repository.lookup("calc", 3)
        with pytest.raises(ModelNotFound, match="Request for unknown model"):
            repository.lookup("nope")
        repository.close()

    asyncio.run(scenario())


def test_failed_first_load_raises_and_records_reason(tmp_path: Path) -> None:
    write_corrupt_model(tmp_path, "bad")

    async def scenario() -> None:
        repository = _repository(tmp_path)
        with pytest.raises(LoadFailed, match="cannot load ONNX model"):
            await repository.load("bad")
        assert repository.index()[0]["state"] == "UNAVAILABLE"

    asyncio.run(scenario())
