"""`nnserve models list|validate` and settings precedence (flags over NNSERVE_* over defaults)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from service_builders import write_corrupt_model, write_digits_classifier, write_user_model

from service.cli import _settings, build_parser, main
from service.settings import Settings


@pytest.fixture
def mixed_repository(tmp_path: Path) -> Path:
    write_digits_classifier(tmp_path)
    write_user_model(tmp_path)
    write_corrupt_model(tmp_path)
    write_user_model(tmp_path, "bad-config")
    (tmp_path / "bad-config" / "config.yaml").write_text("task: tensor\nimage: {height: 0, width: 8}\n")
    return tmp_path


def test_models_list_prints_tasks_versions_and_config_problems(
    mixed_repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list", "--repository", str(mixed_repository), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["digits-linear"]["task"] == "image-classification" and rows["digits-linear"]["served"] == [
        "1"
    ]
    assert rows["calculator"]["task"] == "tensor" and rows["calculator"]["config"] == "ok"
    assert "image.height" in rows["bad-config"]["config"] and "(got 0)" in rows["bad-config"]["config"]
    assert main(["models", "list", "--repository", str(mixed_repository)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["MODEL", "TASK", "ON"] and "digits-linear" in table


def test_models_validate_exits_1_naming_each_problem(
    mixed_repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "validate", "--repository", str(mixed_repository)]) == 1
    out = capsys.readouterr().out
    assert "digits-linear            1        ok (cpu)" in out
    assert "broken" in out and "cannot load ONNX model" in out
    assert (
        main(["models", "validate", "--repository", str(mixed_repository), "digits-linear", "calculator"])
        == 0
    )


def test_models_validate_unknown_model_or_repository_exits_with_message(mixed_repository: Path) -> None:
    with pytest.raises(SystemExit, match="no model \\['nope'\\]"):
        main(["models", "validate", "--repository", str(mixed_repository), "nope"])
    with pytest.raises(SystemExit, match="is not a directory"):
        main(["models", "list", "--repository", str(mixed_repository / "missing")])


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNSERVE_PORT", "9000")
    monkeypatch.setenv("NNSERVE_PROVIDERS", "cuda, cpu")
    monkeypatch.setenv("NNSERVE_STRICT_READINESS", "false")
    settings = _settings(build_parser().parse_args(["serve", "--port", "9100", "--intra-op-threads", "2"]))
    assert settings.port == 9100 and settings.intra_op_threads == 2
    assert settings.providers == ["cuda", "cpu"] and settings.strict_readiness is False
    assert Settings().port == 9000


def test_invalid_setting_stops_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNSERVE_PROVIDERS", "gpu")
    with pytest.raises(SystemExit, match=r"providers\.0"):
        _settings(build_parser().parse_args(["serve"]))


def test_python_dash_m_service_shows_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--max-request-bytes" in result.stdout and "NNSERVE_MAX_REQUEST_BYTES" in result.stdout


def test_docs_list_every_setting() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`NNSERVE_{name.upper()}`" not in docs]
    assert missing == []


WITHOUT_ONNXRUNTIME = """
import sys


class NoOnnxRuntime:
    '''An environment with neither nnserve[cpu] nor nnserve[gpu]: `onnxruntime` cannot be found.'''

    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoOnnxRuntime())
from service.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_serve_without_onnxruntime_stops_naming_the_extras_to_install(tmp_path: Path) -> None:
    command = [sys.executable, "-c", WITHOUT_ONNXRUNTIME]
    result = subprocess.run(
        [*command, "serve", "--repository", str(tmp_path), "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result
    assert "No module named 'onnxruntime'" in result.stderr, result.stderr
    assert "pip install 'nnserve[cpu]'" in result.stderr and "pip install 'nnserve[gpu]'" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    helped = subprocess.run([*command, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--repository" in helped.stdout, helped
