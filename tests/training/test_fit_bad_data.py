"""Bad data is refused before training, with the file, line or column named, and the repository untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from training.cli import main
from training.fit import sample_data


def snapshot(repository: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repository)): p.read_bytes() for p in sorted(repository.rglob("*")) if p.is_file()}


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A repository that already serves a model of the same name, which no failed run may touch."""
    repo = tmp_path / "repo"
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "1" / "model.onnx").write_bytes(b"existing graph")
    (repo / "m" / "config.yaml").write_text("name: m\n")
    return repo


def refused(repository: Path, data: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run fit, expect exit code 2 and an untouched repository; return the error line."""
    before = snapshot(repository)
    code = main(["fit", "m", "--data", str(data), "--no-progress", "--repository", str(repository), *args])
    assert code == 2
    assert snapshot(repository) == before
    assert sorted(p.name for p in (repository / "m").iterdir()) == ["1", "config.yaml"]
    err = capsys.readouterr().err
    assert err.startswith("nnserve-train fit: error: ")
    return err


def digits(tmp_path: Path, classes: tuple[int, ...] = (0, 1), count: int = 200) -> Path:
    return sample_data.write_digit_folders(tmp_path / "digits", size=8, count=count, classes=classes)


def test_fit_refuses_an_empty_folder(repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    err = refused(repository, tmp_path / "empty", capsys, "--task", "image-classification")
    assert "no images found" in err and "empty" in err


def test_fit_refuses_a_single_class(repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(repository, digits(tmp_path, classes=(4,)), capsys, "--task", "image-classification")
    assert "only the class '4'" in err


def test_fit_refuses_a_class_too_small_for_the_split(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = digits(tmp_path)
    for extra in sorted((data / "1").iterdir())[3:]:
        extra.unlink()
    err = refused(repository, data, capsys, "--task", "image-classification")
    assert "'1' has 3" in err and "needs at least 7" in err


def test_fit_refuses_too_many_corrupt_images_listing_them(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = digits(tmp_path)
    for n in range(3):
        (data / "0" / f"broken{n}.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    err = refused(repository, data, capsys, "--task", "image-classification")
    assert "unreadable" in err and "broken0.png" in err and "--max-corrupt-fraction" in err


def test_fit_skips_and_counts_corrupt_images_within_the_limit(tmp_path: Path) -> None:
    data = sample_data.write_digit_folders(tmp_path / "digits", size=8, count=400)
    (data / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    repo = tmp_path / "repo"
    assert (
        main(
            [
                "fit",
                "d",
                "--task",
                "image-classification",
                "--data",
                str(data),
                "--dry-run",
                "--no-progress",
                "--repository",
                str(repo),
            ]
        )
        == 0
    )
    metrics = json.loads((repo / "d" / "1" / "metrics.json").read_text())
    assert metrics["data"]["skipped_unreadable"] == 1
    assert "broken.png" in metrics["data"]["skipped_examples"][0]


def test_fit_refuses_a_missing_column_listing_the_columns(
    repository: Path, fit_data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(repository, fit_data["sms_csv"], capsys, "--task", "text-classification", "--text-column", "body")
    assert "no text column 'body'" in err and "the columns are: text, label" in err


def test_fit_refuses_a_non_numeric_value_naming_row_and_column(
    repository: Path, fit_data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = fit_data["iris"].read_text().splitlines()
    cells = lines[5].split(",")
    cells[1] = "three"
    lines[5] = ",".join(cells)
    bad = tmp_path / "iris.csv"
    bad.write_text("\n".join(lines) + "\n")
    err = refused(repository, bad, capsys, "--task", "tabular-classification")
    assert f"{bad}:6 column 'sepal_width_(cm)': 'three' is not a number" in err


def test_fit_refuses_non_utf8_text_naming_the_byte_offset(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "texts.csv"
    bad.write_bytes(b"text,label\nhello,a\ncaf\xe9,b\n")
    err = refused(repository, bad, capsys, "--task", "text-classification")
    assert "not UTF-8 at byte offset 22 (line 3)" in err


def test_fit_refuses_a_corpus_too_small_for_the_context(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 20)
    err = refused(repository, corpus, capsys, "--task", "text-generation", "--context", "256")
    assert "corpus too small for --context 256" in err and "part has" in err and "needs at least" in err


def test_fit_refuses_a_labelled_anomaly_set_without_a_normal_label(
    repository: Path, fit_data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(repository, fit_data["iris"], capsys, "--task", "anomaly-detection", "--label-column", "label")
    assert "--normal-label" in err


def test_fit_refuses_a_bad_split_column_value(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "t.csv"
    table.write_text(
        "text,label,part\n" + "".join(f"text {i},{'ab'[i % 2]},{'train' if i > 1 else 'later'}\n" for i in range(30))
    )
    err = refused(repository, table, capsys, "--task", "text-classification", "--split-column", "part")
    assert f"{table}:2: 'later'" in err


def test_fit_drops_and_counts_rows_duplicated_across_splits(tmp_path: Path, fit_data: dict[str, Path]) -> None:
    source = fit_data["breast_cancer"].read_text().splitlines()
    doubled = tmp_path / "bc.csv"
    doubled.write_text("\n".join([*source, *source[1:201]]) + "\n")
    repo = tmp_path / "repo"
    assert (
        main(
            [
                "fit",
                "t",
                "--task",
                "tabular-classification",
                "--data",
                str(doubled),
                "--dry-run",
                "--no-progress",
                "--repository",
                str(repo),
            ]
        )
        == 0
    )
    data = json.loads((repo / "t" / "1" / "metrics.json").read_text())["data"]
    assert data["duplicates_dropped"] > 20
    assert data["train"] + data["validation"] + data["test"] + data["duplicates_dropped"] == len(source) - 1 + 200


def test_fit_refuses_a_folder_given_a_split_column(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(repository, digits(tmp_path), capsys, "--task", "image-classification", "--split-column", "s")
    assert "--split-column" in err


def test_fit_never_writes_a_model_folder_for_a_new_name_that_fails(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "fit",
                "new",
                "--task",
                "image-classification",
                "--data",
                str(tmp_path / "empty"),
                "--repository",
                str(repo),
            ]
        )
        == 2
    )
    assert list(repo.iterdir()) == []
    shutil.rmtree(repo)


def test_fit_refuses_a_model_name_that_is_not_a_folder_name(
    repository: Path, fit_data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(repository)
    assert (
        main(
            [
                "fit",
                "../escape",
                "--task",
                "tabular-classification",
                "--data",
                str(fit_data["iris"]),
                "--repository",
                str(repository),
            ]
        )
        == 2
    )
    assert snapshot(repository) == before
    assert "model name '../escape'" in capsys.readouterr().err


def test_fit_image_generation_refuses_a_single_class_folder(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(repository, digits(tmp_path, classes=(4,)), capsys, "--task", "image-generation")
    assert "only the class folder '4'" in err and "unconditional" in err


def test_fit_image_generation_refuses_fewer_training_images_than_a_batch(
    repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for png in sorted((digits(tmp_path, classes=(0,), count=200)).rglob("*.png"))[:12]:
        shutil.move(png, flat / png.name)
    err = refused(repository, flat, capsys, "--task", "image-generation", "--batch-size", "16")
    assert "training images, fewer than one batch of 16" in err and str(flat) in err
