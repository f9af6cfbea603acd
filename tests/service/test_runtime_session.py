"""Provider choice, the thread rule, graph validation, and CUDA where a GPU and onnxruntime-gpu exist."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import onnxruntime as ort
import pytest
from service_builders import write_digits_classifier, write_user_model

from service.repository.loader import load_version
from service.runtime.model import runs_inline
from service.runtime.session import LoadError, SessionOptions, choose_providers, create_session
from service.runtime.threads import ThreadPlan, plan_threads
from service.schema.config import ModelConfig, TensorSpec, load_config, write_config
from service.settings import Settings


def test_plan_threads_leaves_reserved_cores_to_the_server() -> None:
    rule = {"model_intra": None, "model_inter": None, "server_intra": None, "server_inter": None}
    assert plan_threads(instances=1, reserved_cores=1, cores=8, **rule) == ThreadPlan(intra_op=7, inter_op=1)
    assert plan_threads(instances=2, reserved_cores=1, cores=8, **rule) == ThreadPlan(intra_op=3, inter_op=1)
    assert plan_threads(instances=1, reserved_cores=1, cores=2, **rule) == ThreadPlan(intra_op=1, inter_op=1)
    assert plan_threads(instances=4, reserved_cores=4, cores=2, **rule) == ThreadPlan(intra_op=1, inter_op=1)


def test_plan_threads_explicit_values_win_most_specific_first() -> None:
    plan = plan_threads(
        instances=1,
        reserved_cores=1,
        cores=8,
        model_intra=None,
        model_inter=3,
        server_intra=2,
        server_inter=5,
    )
    assert plan == ThreadPlan(intra_op=2, inter_op=3)
    plan = plan_threads(
        instances=1,
        reserved_cores=1,
        cores=8,
        model_intra=6,
        model_inter=None,
        server_intra=2,
        server_inter=None,
    )
    assert plan == ThreadPlan(intra_op=6, inter_op=1)


@pytest.mark.parametrize(
    ("mode", "provider", "cores", "inline"),
    [
        ("auto", "cpu", 1, True),
        ("auto", "cpu", 2, False),
        ("auto", "cuda", 1, False),
        ("on", "cuda", 8, True),
        ("off", "cpu", 1, False),
    ],
)
def test_runs_inline_only_where_a_worker_thread_cannot_help(mode: str, provider: str, cores: int, inline: bool) -> None:
    assert runs_inline(mode, provider, cores) is inline  # type: ignore[arg-type]


def test_choose_providers_keeps_order_and_skips_missing() -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["cuda", "cpu"], available) == available
    assert choose_providers(["tensorrt", "cpu"], available) == ["CPUExecutionProvider"]
    with pytest.raises(LoadError, match="none of \\['tensorrt'\\] is available"):
        choose_providers(["tensorrt"], available)


def test_session_reports_the_provider_really_in_use(tmp_path: Path) -> None:
    path = write_user_model(tmp_path)
    options = SessionOptions(providers=("cuda", "cpu"), threads=ThreadPlan(1, 1))
    session = create_session(path, options)
    in_use = session.get_providers()[0]
    assert in_use in ort.get_available_providers()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert in_use == "CPUExecutionProvider"
    assert session.get_session_options().intra_op_num_threads == 1


def test_load_version_applies_server_thread_and_provider_overrides(tmp_path: Path) -> None:
    write_digits_classifier(tmp_path)
    settings = Settings(repository=tmp_path, providers="cpu", intra_op_threads=2)
    model = load_version(tmp_path / "digits-linear", 1, load_config(tmp_path / "digits-linear"), settings)
    assert model.provider == "cpu" and model.threads == 2
    model.retire()


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        (
            [TensorSpec(name="pixels", datatype="INT64", shape=[-1, 1, 8, 8])],
            "datatype is INT64 in config.yaml",
        ),
        ([TensorSpec(name="pixels", datatype="FP32", shape=[-1, 64])], "has rank 2"),
        ([TensorSpec(name="image", datatype="FP32", shape=[-1, 1, 8, 8])], "graph's inputs are ['pixels']"),
    ],
)
def test_config_that_contradicts_the_graph_fails_with_reason(
    tmp_path: Path, inputs: list[TensorSpec], fragment: str
) -> None:
    write_digits_classifier(tmp_path)
    write_config(tmp_path / "digits-linear", ModelConfig(inputs=inputs))
    with pytest.raises(LoadError) as failure:
        load_version(
            tmp_path / "digits-linear",
            1,
            load_config(tmp_path / "digits-linear"),
            Settings(repository=tmp_path),
        )
    assert fragment in str(failure.value)


def _cuda_missing() -> str:
    """Why the CUDA test cannot run here, or "" when it can."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"onnxruntime-gpu is not installed (available: {ort.get_available_providers()})"
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA driver (nvidia-smi not found)"
    if subprocess.run(["nvidia-smi", "-L"], capture_output=True, check=False).returncode != 0:
        return "no NVIDIA GPU visible (nvidia-smi -L failed)"
    return ""


@pytest.mark.gpu
@pytest.mark.skipif(bool(_cuda_missing()), reason=_cuda_missing() or "CUDA present")
def test_cuda_provider_is_used_when_gpu_and_onnxruntime_gpu_are_present(tmp_path: Path) -> None:
    write_digits_classifier(tmp_path)
    model = load_version(
        tmp_path / "digits-linear", 1, load_config(tmp_path / "digits-linear"), Settings(repository=tmp_path)
    )
    assert model.provider == "cuda", model.providers
    assert model.providers[0] == "CUDAExecutionProvider"
    model.retire()
