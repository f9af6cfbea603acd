"""Whether a loaded version batches, and its effective batching values, as the config views report them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from service_builders import write_user_model

from service.repository.registry import ModelRepository
from service.schema.config import BatchingSettings, ModelConfig, write_config
from service.settings import Settings


def _write_scalar_model(root: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])],
        "neg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    path = root / "neg" / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def test_batching_follows_the_first_dimension_of_every_input_and_output(tmp_path: Path) -> None:
    write_user_model(tmp_path, "calc")
    write_user_model(tmp_path, "calc-off")
    write_config(tmp_path / "calc-off", ModelConfig(batching=BatchingSettings(max_batch_size=0)))
    write_user_model(tmp_path, "calc-tuned")
    tuned = BatchingSettings(max_batch_size=8, preferred_batch_sizes=[4, 8], max_queue_delay_ms=2)
    write_config(tmp_path / "calc-tuned", ModelConfig(batching=tuned))
    _write_scalar_model(tmp_path)

    async def scenario() -> None:
        repository = ModelRepository(Settings(repository=tmp_path))
        await repository.load_all()
        calc, off, tuned_model, neg = (repository.lookup(n) for n in ("calc", "calc-off", "calc-tuned", "neg"))
        assert (calc.batches, calc.max_batch_size, calc.no_batching_reason) == (True, 32, "")
        assert (tuned_model.max_batch_size, tuned_model.preferred_batch_sizes) == (8, (4, 8))
        assert tuned_model.max_queue_delay_ms == 2
        assert (off.batches, off.max_batch_size) == (False, 0)
        assert (neg.batches, neg.max_batch_size, neg.preferred_batch_sizes) == (False, 0, ())
        assert neg.no_batching_reason == "input 'x' is a scalar"
        answer = await neg.infer({"x": np.array(2.5, np.float32)})
        assert answer["y"].shape == () and answer["y"] == -2.5
        repository.close()

    asyncio.run(scenario())
