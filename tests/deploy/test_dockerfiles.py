"""Static checks of deploy/Dockerfile (CPU) and deploy/Dockerfile.gpu: no Docker engine needed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_model import Stage, parse
from image_process import CPU_DOCKERFILE, DEPLOY, GPU_DOCKERFILE, ROOT
from package_closure import closure
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DOCKERFILES = pytest.mark.parametrize("dockerfile", [CPU_DOCKERFILE, GPU_DOCKERFILE], ids=["cpu", "gpu"])
TORCH_PACKAGES = {"torch", "torchvision", "torchaudio", "pytorch-triton", "triton"}


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per .dockerignore line, in Docker's order: the last matching line wins."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = "".join(
            ".*" if part == "**" else "[^/]*" if part == "*" else "[^/]" if part == "?" else re.escape(part)
            for part in re.split(r"(\*\*|\*|\?)", glob)
        )
        patterns.append((negated, re.compile(regex.replace(".*/", "(.*/)?"))))
    return patterns


def _is_dockerignored(path: str) -> bool:
    """Whether the build context omits `path`: a pattern matching it or any parent folder excludes it."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in _dockerignore_patterns():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def _requirements_invocation(stage: Stage) -> list[str]:
    """The arguments a RUN passes to deploy/requirements.py in this stage."""
    for _, run in stage.resolved("RUN"):
        match = re.search(r"deploy/requirements\.py([^>&|;]*)>", run)
        if match:
            return match.group(1).split()
    pytest.fail("no RUN invokes deploy/requirements.py")


def _requirements(stage: Stage) -> list[str]:
    args = _requirements_invocation(stage)
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "requirements.py"), "--pyproject", str(ROOT / "pyproject.toml"), *args],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.split()


def _pip_installs(stage: Stage) -> list[str]:
    return [
        cmd.strip()
        for _, run in stage.resolved("RUN")
        for cmd in re.split(r"&&|;", run)
        if "pip install" in cmd
    ]


@DOCKERFILES
def test_final_stage_runs_as_non_root_numeric_user(dockerfile: Path) -> None:
    user = final_stage_of(dockerfile).user()
    assert user is not None, f"{dockerfile.name}: the final stage has no USER"
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"{dockerfile.name}: USER {user!r} must be numeric for Kubernetes' runAsNonRoot"
    assert int(uid) != 0 and (not gid or int(gid) != 0), f"{dockerfile.name}: USER {user!r} is root"


@DOCKERFILES
def test_healthcheck_probes_readiness(dockerfile: Path) -> None:
    stage = final_stage_of(dockerfile)
    healthcheck = stage.healthcheck()
    assert healthcheck is not None, f"{dockerfile.name}: no HEALTHCHECK in the final stage"
    options, command = healthcheck
    script = next((w for w in command if w.endswith("healthcheck.py")), None)
    assert script is not None, f"{dockerfile.name}: HEALTHCHECK {command} does not run healthcheck.py"
    assert any(c.destination == script for c in stage.copies()), f"{script} is not copied into the image"
    assert "/v2/health/ready" in (DEPLOY / "healthcheck.py").read_text(encoding="utf-8")
    assert {"interval", "timeout", "start-period", "retries"} <= options.keys(), options


@DOCKERFILES
def test_copy_sources_exist_in_the_build_context(dockerfile: Path) -> None:
    stages = parse(dockerfile)
    names = {s.name for s in stages if s.name}
    problems = []
    for stage in stages:
        for copy in stage.copies():
            if copy.from_stage is not None:
                assert copy.from_stage in names, f"line {copy.line}: --from={copy.from_stage} is no stage"
                continue
            for source in copy.sources:
                if "$" in source:
                    problems.append(f"line {copy.line}: unresolved variable in {source!r}")
                elif not (ROOT / source).exists():
                    problems.append(f"line {copy.line}: {source!r} does not exist")
                elif _is_dockerignored(source):
                    problems.append(f"line {copy.line}: {source!r} is excluded by .dockerignore")
    assert problems == [], f"{dockerfile.name}: " + "; ".join(problems)


def test_dockerignore_keeps_venv_and_tests_out() -> None:
    for path in (".venv", ".git", "tests", "training", "service/__pycache__", "models/x/1/__pycache__"):
        assert _is_dockerignored(path), f"{path} would be sent to the Docker daemon"
    for path in ("service", "models", "pyproject.toml", "deploy/healthcheck.py", "deploy/requirements.py"):
        assert not _is_dockerignored(path), f"{path} is needed by the images"


@DOCKERFILES
def test_entry_command_serves_from_environment_settings(dockerfile: Path) -> None:
    stage = final_stage_of(dockerfile)
    env = stage.env()
    assert (stage.exec_form("ENTRYPOINT") or []) + (stage.exec_form("CMD") or []) == ["nnserve", "serve"]
    assert env["NNSERVE_HOST"] == "0.0.0.0"
    assert env["NNSERVE_PORT"] == "8000"
    copied = {
        c.destination.rstrip("/") for c in stage.copies() if "models" in {s.rstrip("/") for s in c.sources}
    }
    assert env["NNSERVE_REPOSITORY"] in copied, (
        f"NNSERVE_REPOSITORY={env['NNSERVE_REPOSITORY']} is not models/"
    )
    assert "MODEL_REPOSITORY" in {i.value.split("=")[0] for i in stage.instructions if i.keyword == "ARG"}


def test_cpu_image_requirements_exclude_torch() -> None:
    stage = parse(CPU_DOCKERFILE)[0]
    names = {canonicalize_name(Requirement(r).name) for r in _requirements(stage)}
    assert "onnxruntime" in names
    assert names.isdisjoint(TORCH_PACKAGES | {"onnxruntime-gpu"}), names
    for install in _pip_installs(stage):
        assert "torch" not in install and "[" not in install, (
            f"unexpected install in the CPU image: {install}"
        )


def test_cpu_image_requirements_do_not_pull_torch_transitively() -> None:
    """Walk the installed dependency tree of the CPU requirements (this venv has torch, for training)."""
    installed = closure(_requirements(parse(CPU_DOCKERFILE)[0]))
    assert {"onnxruntime", "fastapi", "uvicorn", "uvloop"} <= installed
    assert installed.isdisjoint(TORCH_PACKAGES), installed & TORCH_PACKAGES


def test_gpu_image_installs_onnxruntime_gpu_without_cpu_onnxruntime() -> None:
    stage = parse(GPU_DOCKERFILE)[1]
    requirements = _requirements(stage)
    names = {canonicalize_name(Requirement(r).name) for r in requirements}
    assert "onnxruntime-gpu" in names and "onnxruntime" not in names, names
    assert names.isdisjoint(TORCH_PACKAGES), names
    installs = _pip_installs(stage)
    assert any("--no-deps ." in i for i in installs), f"the project must go in with --no-deps: {installs}"
    assert any("CUDAExecutionProvider" in run for _, run in stage.resolved("RUN")), (
        "no build-time CUDA EP check"
    )


def test_gpu_base_image_is_cuda_cudnn_runtime() -> None:
    base = parse(GPU_DOCKERFILE)[0].base
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.\d+(?:\.\d+)?-cudnn-runtime-ubuntu\d+\.\d+", base)
    assert match, f"GPU base {base!r} is not an nvidia/cuda cuDNN runtime image"
    ort_pin = next(
        i.value for i in parse(GPU_DOCKERFILE)[1].instructions if i.value.startswith("ONNXRUNTIME_GPU=")
    )
    # The header comment states the CUDA major the pinned onnxruntime-gpu needs; the tag must agree.
    assert f"needs CUDA {match.group(1)}.x" in GPU_DOCKERFILE.read_text(encoding="utf-8"), (base, ort_pin)


def final_stage_of(dockerfile: Path) -> Stage:
    return parse(dockerfile)[-1]


@DOCKERFILES
def test_image_serves_and_exposes_grpc_on_8001(dockerfile: Path) -> None:
    stage = final_stage_of(dockerfile)
    assert stage.env()["NNSERVE_GRPC_PORT"] == "8001"
    lines = dockerfile.read_text().splitlines()
    exposed = {port for line in lines if line.startswith("EXPOSE") for port in line.split()[1:]}
    assert {"8000", "8001"} <= exposed
