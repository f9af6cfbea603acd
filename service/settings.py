"""Every server setting, in one pydantic-settings class: `NNSERVE_<NAME>` variables, overridden by CLI flags.

Created once (by the CLI or the caller of `create_app`) and validated at start-up, so a bad value stops
the server with a message instead of failing the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.schema.config import Provider

LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "warning", "error"]
InlineInference = Literal["auto", "on", "off"]
CpuArena = Literal["shrink", "keep", "off"]


class Settings(BaseSettings):
    """Server settings; the field descriptions are the documentation (docs/serving.md repeats them)."""

    model_config = SettingsConfigDict(env_prefix="NNSERVE_", frozen=True, extra="forbid")

    repository: Path = Field(default=Path("models"), description="Model repository root.")
    host: str = Field(default="127.0.0.1", description="Address uvicorn binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port uvicorn binds (0 = any free port).")
    grpc_port: int = Field(
        default=8001,
        ge=0,
        le=65535,
        description="Port of the gRPC endpoint (Triton's `inference.GRPCInferenceService`, health, reflection) "
        "on the same host; 0 = no gRPC.",
    )
    grpc_max_message_bytes: int = Field(
        default=16 * 1024 * 1024,
        gt=0,
        description="Largest gRPC message received or sent; larger ones fail with RESOURCE_EXHAUSTED.",
    )
    log_level: LogLevel = Field(default="info", description="Lowest level written to the log.")
    log_format: LogFormat = Field(
        default="json", description="json: one JSON object per line; text: for humans."
    )
    access_log: bool = Field(
        default=True,
        description="One log line per answered request (method, path, status, ms); off saves about a "
        "sixth of the CPU per request on small models, and `/metrics` counts every request either way.",
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
    cpu_arena: CpuArena = Field(
        default="shrink",
        description="ONNX Runtime's CPU memory arena: `shrink` = give back the arena regions no run uses "
        "(see cpu_arena_shrink_s), so one huge request cannot keep gigabytes; `keep` = ONNX Runtime's default (the "
        "arena keeps its peak for reuse); `off` = no arena (every tensor allocated and freed on its own).",
    )
    cpu_arena_shrink_s: float = Field(
        default=1.0,
        ge=0,
        description="With cpu_arena=shrink, at most one run per session every this many seconds gives the "
        "arena's unused regions back (shrinking costs the next run its page faults again); 0 = every run.",
    )
    malloc_arena_max: int = Field(
        default=2,
        ge=0,
        description="glibc malloc arenas at most (mallopt M_ARENA_MAX, set at start-up): every new thread may "
        "get its own arena, and under hot reloads (new session threads each time) freed memory scattered over "
        "many arenas cannot be reused or trimmed, so RSS creeps up; 0 = glibc's default (8 per core).",
    )
    thread_spinning: bool = Field(
        default=False,
        description="Let ONNX Runtime worker threads spin between runs (lower latency, burns idle cores).",
    )
    opentelemetry: bool = Field(
        default=False,
        description="Let FastAPI send OpenTelemetry traces, metrics and logs to the providers configured "
        "globally (the OTEL_* variables); off, its check for a provider on every request (about a twentieth of "
        "the CPU per request) is skipped. `/metrics` serves Prometheus either way.",
    )
    inline_inference: InlineInference = Field(
        default="auto",
        description="Run model batches on the event loop instead of a worker thread: `auto` = when the "
        "server may use one core only and the model runs on the CPU, where a thread cannot run beside "
        "the loop and each hand-off only adds latency; `on`; `off`.",
    )
    strict_readiness: bool = Field(
        default=True,
        description="Ready only when every model that should load has loaded; false: once loading ended.",
    )
    ready_when_empty: bool = Field(
        default=False, description="Report ready when the repository holds no model."
    )
    repository_poll_s: float = Field(
        default=0.0,
        ge=0,
        description="Poll mode: every this many seconds, load new models and versions, unload removed ones "
        "and hot-reload changed ones (config.yaml or version folders); 0 = off (load and unload by API only).",
    )
    max_request_bytes: int = Field(
        default=16 * 1024 * 1024,
        gt=0,
        description="Larger request bodies are refused with 413: at once from Content-Length, else as "
        "soon as the count passes it (also after decompression).",
    )
    max_response_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Most tensor bytes one v2 infer answer may hold (the requested outputs' raw sizes; JSON "
        "text runs to about three times that); a request whose answer would be larger gets 413.",
    )
    compress_min_bytes: int = Field(
        default=1024,
        ge=0,
        description="Answers of at least this many bytes are compressed for clients that send "
        "`Accept-Encoding: gzip` or `deflate` (tritonclient's response_compression_algorithm); 0 = never.",
    )
    compress_level: int = Field(
        default=1, ge=1, le=9, description="zlib level for compressed answers: 1 is fastest, 9 smallest."
    )
    max_upload_bytes: int = Field(
        default=256 * 1024 * 1024,
        gt=0,
        description="Most bytes of model files (decoded) one repository load may upload as `file:` parameters "
        "(413 past it); the base64 body must also fit max_request_bytes.",
    )
    max_upload_files: int = Field(default=64, gt=0, description="Most `file:` parameters in one repository load.")
    max_instances: int = Field(
        default=1024, gt=0, description="Most instances (or uploaded files) in one :predict."
    )
    max_text_chars: int = Field(
        default=100_000,
        gt=0,
        description="Longest text (a :predict instance, a prompt) in characters; longer is refused with 413 "
        "before tokenizing. Tokens are then bounded by each model's text.max_length or context length.",
    )
    max_image_pixels: int = Field(
        default=4096 * 4096,
        gt=0,
        description="Largest picture in pixels, read from its header before decoding (413); a model's "
        "`image.max_pixels` may lower it.",
    )
    max_request_pixels: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Most pixels of all the pictures of one request together (413), counted from each "
        "picture's header before it is decoded.",
    )
    max_generated_images: int = Field(
        default=256,
        gt=0,
        description="Most images one image-generation :predict may ask for (each instance's `count`, and "
        "their sum; 413 above).",
    )
    allow_non_finite: bool = Field(
        default=False,
        description="Let NaN and infinity through to task models; by default they get 400 "
        "(tensor models always receive what was sent).",
    )
    isolate_failed_batches: bool = Field(
        default=True,
        description="Run a batch whose model run failed again one request at a time, so one request's bad "
        "values (a token id past the vocabulary) fail only that request.",
    )
    api_key: str | None = Field(
        default=None, description="One API key with full access (kept for compatibility; see api_keys)."
    )
    api_keys: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="API keys with full access, comma-separated: repository load/unload need one "
        "(`Authorization: Bearer <key>` or `X-API-Key`).",
    )
    inference_api_keys: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="API keys that may run models but not change the repository (403 there), comma-separated.",
    )
    auth_inference: bool = Field(
        default=False,
        description="Require a key for every endpoint except health, /metrics, /v2 and the docs.",
    )
    cors_origins: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Origins allowed to call the API from a browser, comma-separated (`*` = any); unset = "
        "no CORS headers.",
    )
    request_timeout_ms: float = Field(
        default=30_000,
        ge=0,
        description="Deadline of a request waiting in a batch queue (504 after it); a model's "
        "`batching.timeout_ms` wins, a request's own deadline wins over both; 0 = none.",
    )
    shutdown_delay_s: float = Field(
        default=0.0,
        ge=0,
        description="On SIGTERM, keep accepting this long while readiness reports 503 (lets a load "
        "balancer notice), then stop accepting.",
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="After accepting stops, how long requests in flight (streams included) may take to "
        "finish before they are cut.",
    )
    ui: bool = Field(default=True, description="Serve the playground and status page at `/`.")
    max_header_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest request head (request line and headers) `nnserve serve` reads; larger gets 431.",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A request head not complete this long after its first byte gets 408."
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="A request body not complete this long after its head gets 408."
    )
    max_connections: int = Field(
        default=1024,
        gt=0,
        description="Open connections `nnserve serve` keeps (capped below the file descriptor limit); past it a "
        "new one closes the connection stalled longest on its request head, else the longest idle one.",
    )
    max_concurrency: int = Field(
        default=2048,
        gt=0,
        description="Requests handled at once (streams included); past it new requests get 503 at once.",
    )
    keep_alive_s: int = Field(
        default=5, gt=0, description="An idle keep-alive connection is closed after this many seconds."
    )
    root_path: str = Field(
        default="",
        pattern=r"^(/[^/\s]+)*$",
        description="The path prefix a proxy serves the app under and strips (`/nnserve`), as uvicorn's "
        "`--root-path`: links and the docs carry it; routes, API keys and error shapes match without it.",
    )

    @field_validator("providers", mode="before")
    @classmethod
    def _split_providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()] or None
        return value

    @field_validator("api_keys", "inference_api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()] or None
        return value

    @field_validator("api_key", "api_keys", "inference_api_keys")
    @classmethod
    def _keys_usable(cls, value: str | list[str] | None) -> str | list[str] | None:
        for key in [value] if isinstance(value, str) else value or []:
            if not key or not key.isprintable() or " " in key:
                raise ValueError(f"API keys must be printable characters without spaces (got {len(key)} characters)")
        return value

    @model_validator(mode="after")
    def _auth_inference_has_keys(self) -> Settings:
        if self.auth_inference and not (self.admin_keys or self.inference_keys):
            raise ValueError("auth_inference=true needs NNSERVE_API_KEYS or NNSERVE_INFERENCE_API_KEYS")
        return self

    @property
    def admin_keys(self) -> tuple[str, ...]:
        """Every key with full access: `api_keys` plus the single `api_key`."""
        return tuple(dict.fromkeys([*(self.api_keys or []), *([self.api_key] if self.api_key else [])]))

    @property
    def inference_keys(self) -> tuple[str, ...]:
        return tuple(self.inference_api_keys or [])
