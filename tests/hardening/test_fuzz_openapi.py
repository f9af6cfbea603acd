"""schemathesis over the whole OpenAPI schema of a live server (Triton's L0_http_fuzz, schema-driven).

Every operation gets generated requests, valid and invalid: the server must never answer 5xx, and every
answer must be one the schema declares, with the declared content type and body shape. The server runs
with API keys that schemathesis is not given, so it cannot unload the models it is testing (and the
repository operations' 401 is exercised instead).

Check left out: `positive_data_acceptance` (a schema-valid body must get 2xx), because whether a tensor
fits a model depends on that model's signature, which a schema shared by all models cannot express;
such requests get a 400 naming the field, which the other checks verify is declared. The stateful
resource checks (`use_after_free`, `ensure_resource_availability`) need create/delete links this API
does not have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import keys
from .repository import copy_bundled
from .server import Server, serving

CI_EXAMPLES = 40
"""Per operation: with every phase, well over 1,000 requests in all, in about a minute on 2 cores."""
LONG_EXAMPLES = 500
MIN_REQUESTS = 1000
EXCLUDED_CHECKS = "positive_data_acceptance,use_after_free,ensure_resource_availability,object_level_authorization"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("fuzz")
    root = base / "models"
    root.mkdir()
    copy_bundled(root, "digits-cnn", "digits-ae", "text-lstm", "tiny-gpt")
    with serving(root.resolve(), base / "server.log", env=keys.server_env()) as srv:
        yield srv


def run_schemathesis(server: Server, report_dir: Path, max_examples: int, seed: int = 0) -> dict[str, Any]:
    """Run the schemathesis CLI against the server and return its JSON run report."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
        "--max-examples", str(max_examples),
        "--checks", "all",
        "--exclude-checks", EXCLUDED_CHECKS,
        "--seed", str(seed),
        "--workers", "1",
        "--request-timeout", "30",
        "--generation-database", "none",
        "--report", "json",
        "--report-dir", str(report_dir),
        "--no-color",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=report_dir)
    reports = sorted(report_dir.glob("json-*.json"))
    assert reports, f"schemathesis wrote no report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    report: dict[str, Any] = json.loads(reports[-1].read_text())
    report["output"] = result.stdout[-20_000:]
    return report


def _assert_clean(report: dict[str, Any], server: Server) -> None:
    assert report["complete"], report["output"]
    assert not report["failures"], f"{json.dumps(report['failures'], indent=1)}\n{report['output']}"
    assert not report["errors"], f"{json.dumps(report['errors'], indent=1)}\n{report['output']}"
    assert report["operations"]["tested"] == report["operations"]["total"], report["operations"]
    assert server.process.poll() is None


def test_fuzzing_the_openapi_schema_finds_no_5xx_and_no_schema_violation(
    fuzz_server: Server, tmp_path: Path
) -> None:
    report = run_schemathesis(fuzz_server, tmp_path, CI_EXAMPLES)
    _assert_clean(report, fuzz_server)
    assert report["test_cases"]["generated"] >= MIN_REQUESTS, report["test_cases"]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NNSERVE_FUZZ_LONG"), reason="long fuzzing run: set NNSERVE_FUZZ_LONG=1")
def test_long_fuzzing_run_finds_no_5xx_and_no_schema_violation(fuzz_server: Server, tmp_path: Path) -> None:
    report = run_schemathesis(fuzz_server, tmp_path, LONG_EXAMPLES, seed=int(os.environ.get("NNSERVE_FUZZ_SEED", "1")))
    _assert_clean(report, fuzz_server)
