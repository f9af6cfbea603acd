"""The vendored generated code (service/grpc/generated) is what `make protos` makes from the vendored
.proto files: regenerated into a temporary folder, each module registers the same descriptors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "service" / "grpc" / "generated"
DESCRIPTOR = re.compile(r"^DESCRIPTOR = .*$", re.MULTILINE)


@pytest.mark.parametrize("module", ["grpc_service_pb2.py", "model_config_pb2.py"])
def test_vendored_stubs_match_the_vendored_protos(module: str, tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) regenerates the stubs")
    subprocess.run(
        ["make", "-s", "protos", f"PROTO_OUT={tmp_path}", f"BIN={Path(sys.executable).parent}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    regenerated = DESCRIPTOR.findall((tmp_path / module).read_text())
    vendored = DESCRIPTOR.findall((GENERATED / module).read_text())
    assert len(vendored) == 1
    assert regenerated == vendored
    if module == "grpc_service_pb2.py":
        assert "from service.grpc.generated import model_config_pb2" in (tmp_path / module).read_text()
