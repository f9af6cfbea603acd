"""The parts of `fit` with rules of their own: column kinds, the tabular graph layer, the split, the
image size rule, corpus splitting, and publishing that leaves nothing behind when it fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.cli import main
from training.export import ExportError
from training.fit.corpus import split_corpus
from training.fit.errors import DataError
from training.fit.options import FitOptions
from training.fit.split import split_rows
from training.fit.tables import Table
from training.fit.tabular import TabularInput, column_kinds, features, fit_transform
from training.fit.tasks.tabular_classification import transformed
from training.models.scaled_cnn import halvings


def table(**columns: list[str | None]) -> Table:
    n = len(next(iter(columns.values())))
    return Table(Path("t.csv"), list(columns), dict(columns), list(range(2, n + 2)))


def test_column_kinds_numeric_despite_missing_tokens_and_categorical_for_words() -> None:
    t = table(a=["1", "2.5", "", "NA", "?", "-3e2"], b=["x", "y", "x", "", "z", "1"])
    assert column_kinds(t, ["a", "b"]) == {"a": "numeric", "b": "categorical"}


def test_column_kinds_names_a_stray_word_in_a_numeric_column() -> None:
    t = table(a=[str(i) for i in range(19)] + ["twelve"])
    with pytest.raises(DataError, match=r"t\.csv:21 column 'a': 'twelve' is not a number"):
        column_kinds(t, ["a"])


def test_tabular_input_layer_equals_the_numpy_transform_with_missing_values() -> None:
    t = table(a=["1", "", "3", "10", "2", "nan"], b=["x", "y", "x", "", "w", "y"], c=["5", "5", "5", "5", "5", ""])
    kinds = column_kinds(t, ["a", "b", "c"])
    rows = np.arange(6)
    transform = fit_transform(t, ["a", "b", "c"], kinds, rows[:4], max_categories=8)
    assert transform.median[0] == 3.0 and transform.std[1] == 1.0  # constant column: std floored to 1
    x = features(t, transform.schema, rows)
    assert np.isnan(x[1, 0]) and x[4, 3] == 1.0  # `w` was not in training: b's unknown slot
    with torch.no_grad():
        graph = TabularInput(transform)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(graph, transformed(x, transform), rtol=1e-6, atol=1e-6)
    assert not np.isnan(graph).any()


def test_split_is_stratified_seeded_and_independent_of_row_order_changes() -> None:
    labels = ["a"] * 60 + ["b"] * 20
    options = FitOptions(name="m", task="t", data=Path("."))
    first = split_rows(80, options, labels=labels, keys=list(range(80)))
    again = split_rows(80, options, labels=labels, keys=list(range(80)))
    other = split_rows(
        80, FitOptions(name="m", task="t", data=Path("."), split_seed=1), labels=labels, keys=list(range(80))
    )
    assert all(
        np.array_equal(p, q)
        for p, q in zip((first.train, first.val, first.test), (again.train, again.val, again.test), strict=True)
    )
    assert not np.array_equal(first.test, other.test)
    for part in (first.train, first.val, first.test):
        assert {labels[i] for i in part} == {"a", "b"}
    assert sum(labels[i] == "b" for i in first.test) == 3


def test_split_drops_later_copies_of_training_items() -> None:
    keys = list(range(60)) + list(range(20))  # 20 items twice
    split = split_rows(80, FitOptions(name="m", task="t", data=Path(".")), labels=None, keys=keys)
    seen = {keys[i] for i in split.train}
    assert not any(keys[i] in seen for i in split.val) and split.duplicates_dropped > 0
    assert len(split.train) + len(split.val) + len(split.test) + split.duplicates_dropped == 80


@pytest.mark.parametrize(("size", "blocks"), [(8, 1), (12, 1), (16, 2), (28, 2), (32, 3), (64, 4)])
def test_cnn_depth_rule_leaves_a_feature_map_of_four_to_seven_pixels(size: int, blocks: int) -> None:
    assert halvings(size) == blocks
    assert 3 <= size >> blocks <= 7


def test_corpus_split_keeps_order_and_cuts_at_line_breaks(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("".join(f"line {i}\n" for i in range(100)))
    (tmp_path / "b.md").write_text("".join(f"more {i}\n" for i in range(100)))
    parts = split_corpus(tmp_path, FitOptions(name="m", task="t", data=tmp_path))
    assert all(p.endswith("\n") for p in parts.train + parts.validation)
    assert (
        "".join(parts.train + parts.validation + parts.test)
        == (tmp_path / "a.txt").read_text() + (tmp_path / "b.md").read_text()
    )
    assert parts.test[-1].endswith("more 99\n")


def test_fit_failing_at_export_leaves_the_repository_untouched(
    monkeypatch: pytest.MonkeyPatch, fit_data: dict[str, Path], tmp_path: Path
) -> None:
    """Export failure is a fault the data cannot cause; the staged folder and new model folder go away."""

    def broken(*args: object, **kwargs: object) -> None:
        raise ExportError("parity failed (simulated)")

    monkeypatch.setattr("training.fit.release.export_onnx", broken)
    repository = tmp_path / "repo"
    (repository / "kept" / "1").mkdir(parents=True)
    args = [
        "--task",
        "tabular-classification",
        "--data",
        str(fit_data["iris"]),
        "--dry-run",
        "--no-progress",
        "--repository",
        str(repository),
    ]
    with pytest.raises(ExportError):
        main(["fit", "new", *args])
    with pytest.raises(ExportError):
        main(["fit", "kept", *args])
    assert sorted(str(p.relative_to(repository)) for p in repository.rglob("*")) == ["kept", "kept/1"]
