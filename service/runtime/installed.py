"""Whether ONNX Runtime can be imported, asked before anything imports it.

`nnserve` itself depends on no runtime: the `cpu` extra brings `onnxruntime`, the `gpu` extra
`onnxruntime-gpu` (they ship the same module and must not be installed together). With neither, the
first import deep inside the server would end start-up with a traceback and `No module named
'onnxruntime'`; this says what to install instead.
"""

from __future__ import annotations

INSTALL_HINT = (
    "install a runtime with the server: pip install 'nnserve[cpu]' (CPU) or pip install 'nnserve[gpu]' "
    "(NVIDIA GPU, CUDA), never both"
)


def require_onnxruntime() -> None:
    """SystemExit naming the extras when `onnxruntime` cannot be imported (missing, or a broken install)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"nnserve: ONNX Runtime cannot be imported ({exc}); {INSTALL_HINT}") from None
