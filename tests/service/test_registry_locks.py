"""The repository keeps no per-name state for names clients send: 2,000 unloads of random names leave
no lock behind (one used to stay per name, existing or not)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from service_builders import write_user_model

from service.errors import ModelNotFound
from service.repository.registry import ModelRepository
from service.settings import Settings

NAMES = 2000


def test_unload_of_unknown_names_leaves_no_lock_behind(tmp_path: Path) -> None:
    write_user_model(tmp_path, "calc")

    async def scenario() -> None:
        repository = ModelRepository(Settings(repository=tmp_path))
        await repository.load_all()
        for _ in range(NAMES):
            with pytest.raises(ModelNotFound):
                await repository.unload(f"m-{uuid.uuid4().hex}")
        await repository.unload("calc")
        await repository.load("calc")
        assert len(repository._locks) == 0, f"{len(repository._locks)} locks kept"
        repository.close()

    asyncio.run(scenario())
