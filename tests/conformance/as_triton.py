"""Run an unmodified Triton example script, with one change in what it sees: the server's name in
`get_server_metadata()` reads "triton" once it has been checked to be "nnserve". Everything else (health,
model metadata, the unknown-model error it matches on) reaches the script as nnserve sent it.

Usage: python as_triton.py <script.py> [script arguments]
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

import tritonclient.http as httpclient

_metadata = httpclient.InferenceServerClient.get_server_metadata


def _named_triton(self: httpclient.InferenceServerClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = _metadata(self, *args, **kwargs)
    assert metadata["name"] == "nnserve", metadata
    return {**metadata, "name": "triton"}


if __name__ == "__main__":
    httpclient.InferenceServerClient.get_server_metadata = _named_triton  # type: ignore[method-assign]
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
