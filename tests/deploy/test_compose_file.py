"""docker-compose.yml: valid for every profile (docker-compose v1 validates offline), and complete."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_model import parse
from image_process import DEPLOY, ROOT
from package_closure import closure, third_party_imports

COMPOSE_FILE = ROOT / "docker-compose.yml"
PROFILES = {"default": [], "gpu": ["gpu"], "loadtest": ["loadtest"], "all": ["gpu", "loadtest"]}
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


def _compose_binary() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian package `docker-compose`; .ci/run installs it)")
    return binary


def _resolved(profiles: list[str]) -> dict[str, Any]:
    """The file as docker-compose resolves it: anchors merged, variables substituted, paths absolute."""
    args = [a for p in profiles for a in ("--profile", p)]
    result = subprocess.run(
        [_compose_binary(), *args, "-f", str(COMPOSE_FILE), "config"],
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT, env=_clean_env(),
    )  # fmt: skip
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _clean_env() -> dict[str, str]:
    """No user overrides of the file's ${VAR:-default}s, so the defaults are what gets checked."""
    overridden = {"NNSERVE_MODELS", "NNSERVE_LOG_LEVEL", "GRAFANA_ADMIN_PASSWORD", "COMPOSE_PROFILES"}
    return {k: v for k, v in os.environ.items() if k not in overridden}


def _mounts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """A service's volumes in long form, whichever syntax the file or the compose version prints."""
    mounts = []
    for volume in spec.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            volume = {"type": kind, "source": source, "target": target, "read_only": mode == ["ro"]}
        mounts.append(volume)
    return mounts


def _raw() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return config


@pytest.mark.parametrize("profiles", PROFILES.values(), ids=PROFILES.keys())
def test_config_validates_for_profile(profiles: list[str]) -> None:
    args = [a for p in profiles for a in ("--profile", p)]
    result = subprocess.run(
        [_compose_binary(), *args, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env=_clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_plain_up_starts_service_prometheus_and_grafana() -> None:
    default = {name for name, spec in _raw()["services"].items() if not spec.get("profiles")}
    assert default == {"nnserve", "prometheus", "grafana"}
    profiled = {name: spec["profiles"] for name, spec in _raw()["services"].items() if spec.get("profiles")}
    assert profiled == {"nnserve-gpu": ["gpu"], "locust-master": ["loadtest"], "locust-worker": ["loadtest"]}


def test_every_service_has_a_healthcheck() -> None:
    services = _resolved(PROFILES["all"])["services"]
    missing = [name for name, spec in services.items() if not spec.get("healthcheck", {}).get("test")]
    assert missing == []


def test_nnserve_services_mount_the_repository_read_only() -> None:
    services = _resolved(PROFILES["gpu"])["services"]
    for name in ("nnserve", "nnserve-gpu"):
        spec = services[name]
        mounts = [v for v in _mounts(spec) if v["target"] == spec["environment"]["NNSERVE_REPOSITORY"]]
        assert len(mounts) == 1, f"{name}: no volume at NNSERVE_REPOSITORY"
        assert mounts[0]["read_only"] is True
        assert Path(mounts[0]["source"]) == ROOT / "models"
        assert spec["restart"] == "unless-stopped"
        assert any(p["target"] == int(spec["environment"]["NNSERVE_PORT"]) for p in spec["ports"])
        assert any(p["target"] == int(spec["environment"]["NNSERVE_GRPC_PORT"]) for p in spec["ports"])


def test_gpu_service_reserves_an_nvidia_gpu_and_builds_the_gpu_image() -> None:
    spec = _resolved(PROFILES["gpu"])["services"]["nnserve-gpu"]
    devices = spec["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices
    assert spec["build"]["dockerfile"] == "deploy/Dockerfile.gpu"


def test_bind_mounts_and_build_files_exist() -> None:
    services = _resolved(PROFILES["all"])["services"]
    missing = []
    for name, spec in services.items():
        for volume in _mounts(spec):
            if volume["type"] == "bind" and not Path(volume["source"]).exists():
                missing.append(f"{name}: {volume['source']}")
        build = spec.get("build")
        if build and not (Path(build["context"]) / build["dockerfile"]).exists():
            missing.append(f"{name}: {build['dockerfile']}")
    assert missing == []


def test_locust_services_run_the_locustfile_against_nnserve() -> None:
    services = _raw()["services"]
    for name in ("locust-master", "locust-worker"):
        command = services[name]["command"]
        assert "-f /mnt/locust/loadtests/locustfile.py" in command, command
        mount = {"source": "./loadtests", "target": "/mnt/locust/loadtests", "read_only": True}
        assert mount.items() <= _mounts(services[name])[0].items(), services[name]["volumes"]
    assert "--host http://nnserve:8000" in services["locust-master"]["command"]
    assert "--master-host locust-master" in services["locust-worker"]["command"]
    if not LOCUSTFILE.exists():
        pytest.skip(f"{LOCUSTFILE.relative_to(ROOT)} is not written yet (load-test issue)")


def test_prometheus_and_grafana_mount_the_deploy_config() -> None:
    services = _resolved(PROFILES["default"])["services"]
    prometheus_sources = {Path(v["source"]) for v in _mounts(services["prometheus"]) if v["type"] == "bind"}
    grafana_sources = {Path(v["source"]) for v in _mounts(services["grafana"]) if v["type"] == "bind"}
    assert ROOT / "deploy" / "prometheus" in prometheus_sources
    assert {ROOT / "deploy/grafana/provisioning", ROOT / "deploy/grafana/dashboards"} <= grafana_sources
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith("/var/lib/grafana/dashboards/")
    assert (ROOT / "deploy/grafana/dashboards" / Path(home).name).exists()


def test_locust_image_provides_what_the_locustfile_imports() -> None:
    if not LOCUSTFILE.exists():
        pytest.skip(f"{LOCUSTFILE.relative_to(ROOT)} is not written yet (load-test issue)")
    stage = parse(DEPLOY / "Dockerfile.locust")[-1]
    added = [
        w
        for _, run in stage.resolved("RUN")
        for w in run.split("pip install", 1)[-1].split()
        if not w.startswith("-")
    ]
    provided = closure(["locust", *added])
    imported = third_party_imports(LOCUSTFILE, LOCUSTFILE.parent)
    assert imported - provided == set(), f"add to deploy/Dockerfile.locust: {sorted(imported - provided)}"
    assert stage.user() not in (None, "root", "0"), stage.user()


def test_cpu_and_gpu_services_publish_distinct_host_ports() -> None:
    services = _resolved(PROFILES["gpu"])["services"]
    published = [str(p["published"]) for name in ("nnserve", "nnserve-gpu") for p in services[name]["ports"]]
    assert "8001" in published, "the CPU service's gRPC port is published as Triton's 8001"
    assert len(published) == len(set(published)), published
