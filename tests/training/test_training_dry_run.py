"""Every family end to end with --dry-run: train a batch, export, parity, write a repository version."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from training_testkit import FAMILIES, TEXT_FAMILIES

from service.schema.config import (
    CARD_FILE,
    CURVES_FILE,
    METRICS_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    list_versions,
    load_config,
)
from training.cli import main
from training.export import PARITY_TOLERANCE
from training.registry import get_family

ONNX_TYPES = {onnx.TensorProto.FLOAT: "FP32", onnx.TensorProto.INT64: "INT64"}


@pytest.mark.parametrize("name", FAMILIES)
def test_dry_run_writes_a_complete_version(dry_run_repository: Path, name: str) -> None:
    model_dir = dry_run_repository / name
    assert list_versions(model_dir) == [1]
    version_dir = model_dir / "1"
    expected = {MODEL_FILE, CARD_FILE, METRICS_FILE, CURVES_FILE} | (
        {TOKENIZER_FILE} if name in TEXT_FAMILIES else set()
    )
    assert {p.name for p in version_dir.iterdir()} == expected
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".")] == []
    metrics = json.loads((version_dir / METRICS_FILE).read_text())
    assert metrics["dry_run"] is True
    assert max(metrics["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE
    assert "Dry run" in (version_dir / CARD_FILE).read_text()


@pytest.mark.parametrize("name", FAMILIES)
def test_dry_run_graph_matches_its_config(dry_run_repository: Path, name: str) -> None:
    config = load_config(dry_run_repository / name)
    graph = onnx.load(str(dry_run_repository / name / "1" / MODEL_FILE)).graph
    for specs, tensors in ((config.inputs, graph.input), (config.outputs, graph.output)):
        assert [s.name for s in specs] == [t.name for t in tensors]
        for spec, tensor in zip(specs, tensors, strict=True):
            dims = tensor.type.tensor_type.shape.dim
            assert ONNX_TYPES[tensor.type.tensor_type.elem_type] == spec.datatype
            assert [-1 if d.dim_param else d.dim_value for d in dims] == spec.shape


@pytest.mark.parametrize("name", FAMILIES)
def test_dry_run_evaluate_reports_the_required_fields(dry_run_repository: Path, name: str) -> None:
    metrics = get_family(name).evaluate(dry_run_repository, None)
    assert {"model": name, "version": 1, "split": "test"}.items() <= metrics.items()
    assert metrics["n"] > 0
    metric = "auroc" if name == "digits-ae" else "accuracy"
    assert 0.0 <= metrics[metric] <= 1.0


def test_training_again_adds_a_version_and_an_explicit_version_replaces(tmp_path: Path) -> None:
    args = ["train", "digits-cnn", "--dry-run", "--no-progress", "--repository", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 0
    assert list_versions(tmp_path / "digits-cnn") == [1, 2]
    first = tmp_path / "digits-cnn" / "1" / METRICS_FILE
    before = json.loads(first.read_text())["seed"]
    assert main([*args, "--version", "1", "--seed", "7"]) == 0
    assert list_versions(tmp_path / "digits-cnn") == [1, 2]
    assert (before, json.loads(first.read_text())["seed"]) == (0, 7)
