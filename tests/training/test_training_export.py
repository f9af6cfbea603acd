"""ONNX export: single file, dynamic axes, checker, parity against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from training.export import PARITY_BATCH_SIZES, PARITY_TOLERANCE, ExportError, ExportSpec, export_onnx
from training.fit.text_batches import random_text_inputs
from training.models.heads import Probabilities
from training.models.lstm import LSTMConfig, TextLSTM


class TinyConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(pixels)).flatten(1))


class DriftingOutput(nn.Module):
    """Adds a Python-side counter: the traced graph freezes it, so torch and ONNX disagree later."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x) + float(self.calls)


def pixels(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"pixels": torch.rand(batch, 1, 8, 8, generator=generator) * 16}


def test_export_writes_one_file_with_a_dynamic_batch_axis(tmp_path: Path) -> None:
    spec = ExportSpec(Probabilities(TinyConv()), pixels, ["probabilities"], {"pixels": {0: "batch"}},
                      metadata={"model": "tiny"})  # fmt: skip
    report = export_onnx(spec, tmp_path / "model.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert sorted(report.max_abs_diff) == sorted(PARITY_BATCH_SIZES)
    assert report.worst <= PARITY_TOLERANCE
    model = onnx.load(str(tmp_path / "model.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 8, 8]
    assert {p.key: p.value for p in model.metadata_props}["nnserve.model"] == '"tiny"'
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"pixels": np.zeros((5, 1, 8, 8), np.float32)})
    assert out.shape == (5, 3)
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_export_fails_when_onnx_disagrees_with_torch(tmp_path: Path) -> None:
    def inputs(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"x": torch.rand(batch, 4, generator=generator)}

    spec = ExportSpec(DriftingOutput(), inputs, ["y"], {"x": {0: "batch"}})
    with pytest.raises(ExportError, match="max abs difference"):
        export_onnx(spec, tmp_path / "model.onnx")


def test_export_fails_when_the_batch_axis_cannot_stay_dynamic(tmp_path: Path) -> None:
    class FixedBatch(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.ones(2, 4)  # only a batch of 2 broadcasts

    def inputs(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"x": torch.rand(batch, 4, generator=generator)}

    with pytest.raises(ExportError, match="fixed size"):
        export_onnx(ExportSpec(FixedBatch(), inputs, ["y"], {"x": {0: "batch"}}), tmp_path / "model.onnx")


def test_torchscript_export_keeps_the_lstm_sequence_axis_dynamic(tmp_path: Path) -> None:
    model = Probabilities(TextLSTM(LSTMConfig(vocab_size=50, pad_token_id=0, embed_dim=8, hidden=8)))
    spec = ExportSpec(
        model,
        random_text_inputs(50, 0, 40),
        ["probabilities"],
        {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}},
        exporter="torchscript",
    )
    report = export_onnx(spec, tmp_path / "model.onnx")
    assert report.worst <= PARITY_TOLERANCE
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    assert all(d.dim_param for i in graph.input for d in i.type.tensor_type.shape.dim)
    assert "LSTM" in {node.op_type for node in graph.node}
