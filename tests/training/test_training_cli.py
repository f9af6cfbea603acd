"""nnserve-train / python -m training: help without torch, evaluate --json, list, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from training_testkit import COMMITTED, FAMILIES

from training.cli import main

SCRIPT = Path(sys.executable).with_name("nnserve-train")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_help_explains_every_subcommand_without_importing_torch() -> None:
    probe = "\n".join(
        [
            "import sys",
            "from training.cli import main",
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass",
            "print('torch loaded:', 'torch' in sys.modules)",
        ]
    )
    result = run(sys.executable, "-c", probe)
    assert result.returncode == 0
    for command in ("list", "train", "evaluate", "all"):
        assert command in result.stdout
    assert "torch loaded: False" in result.stdout


def test_console_script_help_states_every_default() -> None:
    result = run(str(SCRIPT), "train", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in ("--epochs", "--seed", "--dry-run", "--repository", "--version", "--no-progress"):
        assert option in text
    assert text.count("(default:") >= 6
    assert "(default: models)" in text and "(default: 0)" in text


def test_module_evaluate_json_prints_one_object() -> None:
    result = run(sys.executable, "-m", "training", "evaluate", "digits-cnn", "--json", "--repository", str(COMMITTED))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert {"model": "digits-cnn", "version": 1, "split": "test", "n": 360}.items() <= metrics.items()
    assert metrics["accuracy"] >= 0.98


def test_evaluate_a_missing_version_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "digits-cnn", "--repository", str(tmp_path), "--json"]) == 2
    assert "digits-cnn" in capsys.readouterr().err


def test_train_rejects_an_unknown_family(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "no-such-model", "--dry-run"])
    assert exit_info.value.code == 2
    assert "no-such-model" in capsys.readouterr().err


def test_list_names_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in FAMILIES:
        assert name in out
    for task in (
        "image-classification",
        "text-classification",
        "tabular-classification",
        "anomaly-detection",
        "text-generation",
    ):
        assert task in out


@pytest.mark.parametrize("name", ["digits-cnn", "text-lstm", "text-transformer", "digits-ae", "digits-gan", "tiny-gpt"])
def test_list_shows_each_bundled_model_as_the_fit_command_it_equals(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed flags, parsed by `fit` itself, give exactly the preset's settings: a user copying them
    onto their own data trains the way the bundled model is trained."""
    import shlex

    from training.cli import build_parser
    from training.fit.cli import options_from
    from training.registry import get_preset

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    command = lines[lines.index(next(line for line in lines if line.startswith(f"{name} "))) + 1].strip()
    assert command.startswith("= fit --task ")
    argv = ["fit", "mine", "--data", "somewhere", *shlex.split(command.removeprefix("= fit "))]
    options = options_from(build_parser().parse_args(argv), argv)
    preset = get_preset(name)
    assert options.task == preset.task
    for key, value in preset.settings.items():
        if key != "split_column":
            assert getattr(options, key) == value, key


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--lr", "0"), ("--lr", "-0.1"), ("--lr", "nan"), ("--weight-decay", "-1"), ("--weight-decay", "inf")],
)
def test_fit_refuses_an_impossible_schedule_value_naming_the_flag(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository = tmp_path / "repo"
    argv = ["fit", "m", "--task", "tabular-classification", "--data", str(tmp_path), "--repository", str(repository)]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err
    assert not repository.exists()
