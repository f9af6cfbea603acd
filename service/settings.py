"""Every server setting, in one pydantic-settings class: `NNSERVE_<NAME>` variables, overridden by CLI flags.

Created once (by the CLI or the caller of `create_app`) and validated at start-up, so a bad value stops
the server with a message instead of failing the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.repository.config import Provider

LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(BaseSettings):
    """Server settings; the field descriptions are the documentation (docs/serving.md repeats them)."""

    model_config = SettingsConfigDict(env_prefix="NNSERVE_", frozen=True, extra="forbid")

    repository: Path = Field(default=Path("models"), description="Model repository root.")
    host: str = Field(default="127.0.0.1", description="Address uvicorn binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port uvicorn binds (0 = any free port).")
    log_level: LogLevel = Field(default="info", description="Lowest level written to the log.")
    log_format: LogFormat = Field(
        default="json", description="json: one JSON object per line; text: for humans."
    )
    providers: Annotated[list[Provider] | None, NoDecode] = Field(
        default=None,
        description="Execution providers in order, comma-separated (e.g. `cuda,cpu`); "
        "unset = each model's `execution.providers`.",
    )
    intra_op_threads: int | None = Field(
        default=None,
        ge=1,
        description="Threads per ONNX Runtime session; unset = the thread rule (docs/serving.md).",
    )
    inter_op_threads: int | None = Field(
        default=None, ge=1, description="Inter-op threads per session; unset = 1."
    )
    reserved_cores: int = Field(
        default=1,
        ge=0,
        description="Cores kept free for the event loop (HTTP, JSON, image decoding) by the thread rule.",
    )
    thread_spinning: bool = Field(
        default=False,
        description="Let ONNX Runtime worker threads spin between runs (lower latency, burns idle cores).",
    )
    strict_readiness: bool = Field(
        default=True,
        description="Ready only when every model that should load has loaded; false: once loading ended.",
    )
    ready_when_empty: bool = Field(
        default=False, description="Report ready when the repository holds no model."
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Larger request bodies are refused with 413 (after decompression).",
    )
    max_instances: int = Field(
        default=1024, gt=0, description="Most instances (or uploaded files) in one :predict."
    )
    api_key: str | None = Field(
        default=None, description="When set, repository load/unload need `Authorization: Bearer <key>`."
    )
    request_timeout_ms: float = Field(
        default=30_000,
        ge=0,
        description="Deadline of a request waiting in a batch queue (504 after it); a model's "
        "`batching.timeout_ms` wins, a request's own deadline wins over both; 0 = none.",
    )
    ui: bool = Field(default=True, description="Serve the playground and status page at `/`.")

    @field_validator("providers", mode="before")
    @classmethod
    def _split_providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()] or None
        return value
