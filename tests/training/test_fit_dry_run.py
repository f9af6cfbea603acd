"""`nnserve-train fit --dry-run` for every task: the whole path (data, split, preprocessing, one batch,
export with parity, baseline, card, metrics, config) into a fresh repository, published atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.schema.config import (
    CARD_FILE,
    CURVES_FILE,
    METRICS_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelConfig,
    load_config,
)
from training.cli import build_parser, main

CASES = {
    "image-classification": ("digits", ["--task", "image-classification"], ("image", "classification")),
    "text-classification-csv-lstm": ("sms_csv", ["--task", "text-classification", "--arch", "lstm"], ("text",)),
    "tabular-classification": ("breast_cancer", ["--task", "tabular-classification"], ("tabular", "classification")),
    "anomaly-detection-images": (
        "digits",
        ["--task", "anomaly-detection", "--normal-label", "3"],
        ("image", "anomaly"),
    ),
    "anomaly-detection-table": ("iris", ["--task", "anomaly-detection"], ("tabular", "anomaly")),
    "text-generation": ("plays", ["--task", "text-generation", "--context", "32", "--width", "32"], ("generation",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fit_dry_run_publishes_a_complete_version(case: str, fit_data: dict[str, Path], tmp_path: Path) -> None:
    data, args, sections = CASES[case]
    repository = tmp_path / "repo"
    name = case.split("-csv")[0][:40]
    code = main(
        [
            "fit",
            name,
            "--data",
            str(fit_data[data]),
            *args,
            "--dry-run",
            "--no-progress",
            "--repository",
            str(repository),
        ]
    )
    assert code == 0
    model_dir = repository / name
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "config.yaml"]  # no .tmp-* left behind
    config = load_config(model_dir)
    assert config.task == args[1]
    for section in sections:
        assert getattr(config, section) is not None, section
    files = {p.name for p in (model_dir / "1").iterdir()}
    assert {MODEL_FILE, CARD_FILE, METRICS_FILE, CURVES_FILE} <= files
    if config.text is not None or config.generation is not None:
        assert TOKENIZER_FILE in files
    metrics = json.loads((model_dir / "1" / METRICS_FILE).read_text())
    assert metrics["dry_run"] is True
    assert "baseline" in metrics["test"] and metrics["test"]["baseline"]["name"]
    assert max(metrics["parity_max_abs_diff"].values()) <= 1e-4
    assert set(metrics["parity_max_abs_diff"]) == {"1", "7", "64"}
    card = (model_dir / "1" / CARD_FILE).read_text()
    assert "baseline" in card and "nnserve-train fit" in card
    if case == "tabular-classification":
        check_tabular_schema(config)


def check_tabular_schema(config: ModelConfig) -> None:
    """breast_cancer.csv: 30 numeric columns, the string column `band`, labels in order."""
    assert config.tabular is not None and config.classification is not None
    kinds = {c.name: c.kind for c in config.tabular.columns}
    assert kinds["band"] == "categorical" and kinds["mean_radius"] == "numeric"
    assert "label" not in kinds and len(kinds) == 31
    band = next(c for c in config.tabular.columns if c.name == "band")
    assert sorted(band.categories) == ["high", "low", "mid"]
    assert config.inputs[0].shape == [-1, config.tabular.n_features]
    assert config.classification.labels == ["benign", "malignant"]


def test_fit_dry_run_into_an_existing_version_replaces_it(fit_data: dict[str, Path], tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    args = [
        "fit",
        "iris",
        "--task",
        "tabular-classification",
        "--data",
        str(fit_data["iris"]),
        "--dry-run",
        "--no-progress",
        "--repository",
        str(repository),
    ]
    assert main(args) == 0
    (repository / "iris" / "1" / "stale.txt").write_text("from the old version")
    assert main([*args, "--version", "1"]) == 0
    assert sorted(p.name for p in (repository / "iris").iterdir()) == ["1", "config.yaml"]
    assert not (repository / "iris" / "1" / "stale.txt").exists()


def test_fit_help_explains_every_option_with_its_default() -> None:
    parser = build_parser()
    fit = parser._subparsers._group_actions[0].choices["fit"]  # type: ignore[union-attr]
    undocumented = [a.dest for a in fit._actions if not a.help]
    assert undocumented == []
    text = fit.format_help()
    for flag in ("--val-fraction", "--split-column", "--image-size", "--threshold-percentile", "--reload"):
        assert flag in text
    assert "(default: 0.15)" in text and "(default: 99.0)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    formatter = fit.formatter_class(prog="fit")
    silent = [
        a.dest
        for a in fit._actions
        if not a.required and a.dest != "help" and "default" not in formatter._get_help_string(a)
    ]  # type: ignore[attr-defined]
    assert silent == []


def test_fit_reads_colour_images_of_mixed_sizes_from_a_csv_with_a_split_column(tmp_path: Path) -> None:
    """JPEG and PNG colour pictures of several sizes, listed in a CSV (paths relative to it) with a split."""
    from PIL import Image

    from training.fit.sample_data import digit_images

    images, labels = digit_images(size=24, count=120)
    folder = tmp_path / "pictures"
    folder.mkdir()
    lines = ["path,label,part"]
    for n, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        if label > 2:
            continue
        rgb = np.stack([pixels, np.roll(pixels, 1, axis=0), 255 - pixels], axis=-1).astype(np.uint8)
        size = (20 + 4 * (n % 3), 24)
        name = f"{n}.{'jpg' if n % 2 else 'png'}"
        Image.fromarray(rgb).resize(size).save(folder / name)
        lines.append(f"pictures/{name},class-{label},{('train', 'train', 'train', 'val', 'test')[n % 5]}")
    (tmp_path / "index.csv").write_text("\n".join(lines) + "\n")
    repository = tmp_path / "repo"
    assert (
        main(
            [
                "fit",
                "colour",
                "--task",
                "image-classification",
                "--data",
                str(tmp_path / "index.csv"),
                "--split-column",
                "part",
                "--dry-run",
                "--no-progress",
                "--repository",
                str(repository),
            ]
        )
        == 0
    )
    config = load_config(repository / "colour")
    assert config.image is not None and config.classification is not None
    assert (config.image.channels, config.image.invert, config.image.height) == (3, "never", 24)
    assert config.classification.labels == ["class-0", "class-1", "class-2"]
    split = json.loads((repository / "colour" / "1" / METRICS_FILE).read_text())["data"]["split"]
    assert "split column 'part'" in split
