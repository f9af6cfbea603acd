"""One poll pass at a time (`ModelRepository.poll`), in process: what a change on disk does."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from service_builders import write_user_model

from service.errors import ModelNotFound, ModelNotReady
from service.repository.registry import ModelRepository
from service.settings import Settings


def _publish_version(model_dir: Path, version: int) -> None:
    staging = model_dir / f".tmp-{version}"
    shutil.copytree(model_dir / "1", staging)
    os.rename(staging, model_dir / str(version))


def test_poll_applies_changes_on_disk_and_keeps_serving_through_a_bad_config(tmp_path: Path) -> None:
    write_user_model(tmp_path, "calc")
    write_user_model(tmp_path, "spare")

    async def scenario() -> None:
        repository = ModelRepository(Settings(repository=tmp_path))
        await repository.load_all()
        await repository.poll()
        assert repository.lookup("calc").version == 1, "nothing changed: nothing reloaded"
        first = repository.lookup("calc")

        (tmp_path / "calc" / ".tmp-9").mkdir()  # a version still being written: never read
        await repository.poll()
        assert repository.lookup("calc") is first

        _publish_version(tmp_path / "calc", 2)
        await repository.poll()
        assert repository.lookup("calc").version == 2

        (tmp_path / "calc" / "config.yaml").write_text("batching: [not, a, mapping]\n")
        await repository.poll()
        assert repository.lookup("calc").version == 2, "a config that does not parse keeps the served version"
        (tmp_path / "calc" / "config.yaml").unlink()

        shutil.rmtree(tmp_path / "calc" / "2")
        await repository.poll()
        assert repository.lookup("calc").version == 1, "the removed version is no longer served"

        await repository.unload("spare")
        _publish_version(tmp_path / "spare", 2)
        await repository.poll()
        with pytest.raises(ModelNotReady):
            repository.lookup("spare")  # unloaded on purpose: stays so until loaded on purpose

        write_user_model(tmp_path, "newcomer")
        shutil.rmtree(tmp_path / "spare")
        await repository.poll()
        assert repository.lookup("newcomer").version == 1
        with pytest.raises(ModelNotFound):
            repository.lookup("spare")
        repository.close()

    asyncio.run(scenario())
