"""The model repository format, defined once.

`training/` writes repositories through this module and `service/` reads them through it, so the two
sides agree by construction. Layout (Triton-like)::

    <repository>/<name>/config.yaml          ModelConfig below (optional for `task: tensor`)
    <repository>/<name>/<version>/model.onnx
    <repository>/<name>/<version>/card.md, metrics.json, curves.png, tokenizer.json

Shapes are full ONNX shapes *including* the batch dimension, with -1 for a variable dimension; that
keeps validation against the graph a rank-by-rank comparison with no implicit batch axis to remember.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.schema.image_generation import ImageGenerationSettings
from service.schema.tabular import TabularPreprocessing

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.onnx"
CARD_FILE = "card.md"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
TOKENIZER_FILE = "tokenizer.json"

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
"""Model names double as directory names: this pattern keeps every name inside the repository."""
_MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
_VERSION_RE = re.compile(r"^[0-9]+$")

Task = Literal[
    "image-classification",
    "text-classification",
    "tabular-classification",
    "anomaly-detection",
    "text-generation",
    "image-generation",
    "tensor",
]
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BF16", "BYTES",
]  # fmt: skip
Provider = Literal["cuda", "tensorrt", "cpu"]


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in config.yaml must fail the load, not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="Full shape including the batch axis; -1 marks a variable dimension.")

    @field_validator("shape")
    @classmethod
    def _dims_valid(cls, shape: list[int]) -> list[int]:
        if any(d < -1 or d == 0 for d in shape):
            raise ValueError(f"dimensions must be positive or -1, got {shape}")
        return shape


class ImagePreprocessing(_Strict):
    """How an uploaded picture becomes the model's input tensor (NCHW)."""

    height: int = Field(gt=0)
    width: int = Field(gt=0)
    channels: Literal[1, 3] = 1
    ink: Literal["bright", "dark"] = Field(
        "bright", description="What the model was trained on: bright strokes on a dark background, or the reverse."
    )
    invert: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: invert an upload whose background (border) polarity differs from `ink`.",
    )
    value_range: tuple[float, float] = Field(
        (0.0, 1.0), description="Pixel intensity 0..255 is mapped linearly onto this range."
    )
    mean: list[float] | None = None
    std: list[float] | None = None
    max_pixels: int = Field(4096 * 4096, gt=0, description="Larger uploads are refused before decoding.")


class TextPreprocessing(_Strict):
    tokenizer: str = TOKENIZER_FILE
    max_length: int = Field(gt=0, description="Token sequences are truncated to this length.")
    padding: Literal["longest", "max_length"] = Field(
        "longest",
        description="max_length pads every sequence to max_length, which makes answers independent of batching "
        "for models (like a bidirectional LSTM) whose output depends on padding.",
    )
    pad_token_id: int = 0
    input_ids: str = "input_ids"
    attention_mask: str | None = "attention_mask"


class ClassificationSettings(_Strict):
    labels: list[str] = Field(min_length=2)
    probabilities: str = Field(description="Output holding per-class probabilities, shape [-1, n_labels].")
    positive_label: str | None = Field(None, description="Label counted as positive in F1/precision/recall.")


class AnomalySettings(_Strict):
    score: str = Field(description="Output holding one anomaly score per instance, shape [-1].")
    reconstruction: str | None = Field(None, description="Output holding the reconstructed input, if any.")
    threshold: float = Field(description="Scores above this are anomalies.")
    threshold_rule: str = Field(description="How the threshold was calibrated, for the card and the API.")


class GenerationSettings(_Strict):
    tokenizer: str = TOKENIZER_FILE
    eos_token_id: int
    context_length: int = Field(gt=0, description="Positions the model was trained with; prompt+output must fit.")
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    input_ids: str = "input_ids"
    position_ids: str = "position_ids"
    attention_mask: str = "attention_mask"
    """INT64 [batch, past+seq], 1 = real token: left-padded sequences of any length can share a batch."""
    logits: str = "logits"
    past_key_template: str = Field("past_key_values.{layer}.key", description="Formatted with layer=i.")
    past_value_template: str = "past_key_values.{layer}.value"
    present_key_template: str = "present.{layer}.key"
    present_value_template: str = "present.{layer}.value"
    default_max_tokens: int = Field(64, gt=0)
    max_tokens_limit: int = Field(512, gt=0)


class BatchingSettings(_Strict):
    max_batch_size: int = Field(32, ge=0, description="0 or 1 turns dynamic batching off for this model.")
    max_queue_delay_ms: float = Field(
        0.0,
        ge=0,
        description="Longest the oldest queued request waits for companions while the instance is idle. "
        "0 suits CPUs: requests pile up while a batch runs (docs/batching.md measures it).",
    )
    max_queue_size: int = Field(256, gt=0)
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    timeout_ms: float | None = Field(None, gt=0, description="Default per-request deadline; None = server default.")


def _default_providers() -> list[Provider]:
    return ["cuda", "cpu"]


class ExecutionSettings(_Strict):
    providers: list[Provider] = Field(default_factory=_default_providers, min_length=1)
    intra_op_threads: int | None = Field(None, ge=0, description="None = the server's rule (see docs).")
    inter_op_threads: int | None = Field(None, ge=0)
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = "all"
    instances: int = Field(1, ge=1, le=64)


class LatestPolicy(_Strict):
    latest: int = Field(1, ge=1)


class AllPolicy(_Strict):
    all: Literal[True] = True


class SpecificPolicy(_Strict):
    specific: list[int] = Field(min_length=1)


VersionPolicy = LatestPolicy | AllPolicy | SpecificPolicy


class ModelConfig(_Strict):
    name: str | None = Field(None, description="Must equal the directory name when given.")
    task: Task = "tensor"
    description: str = ""
    inputs: list[TensorSpec] = Field(default_factory=list, description="Empty = read from the graph.")
    outputs: list[TensorSpec] = Field(default_factory=list, description="Empty = read from the graph.")
    version_policy: Annotated[VersionPolicy, Field(union_mode="left_to_right")] = LatestPolicy()
    batching: BatchingSettings = BatchingSettings()
    execution: ExecutionSettings = ExecutionSettings()
    image: ImagePreprocessing | None = None
    text: TextPreprocessing | None = None
    tabular: TabularPreprocessing | None = None
    classification: ClassificationSettings | None = None
    anomaly: AnomalySettings | None = None
    generation: GenerationSettings | None = None
    image_generation: ImageGenerationSettings | None = None
    parameters: dict[str, Any] = Field(default_factory=dict, description="Free-form extras (hyperparameters).")

    @field_validator("version_policy", mode="before")
    @classmethod
    def _policy_shorthand(cls, value: Any) -> Any:
        return {"all": True} if value == "all" else value

    @field_validator("name")
    @classmethod
    def _name_valid(cls, name: str | None) -> str | None:
        if name is not None and not _MODEL_NAME_RE.fullmatch(name):
            raise ValueError(f"model name {name!r} does not match {MODEL_NAME_PATTERN}")
        return name

    @model_validator(mode="after")
    def _task_sections_present(self) -> ModelConfig:
        required: dict[str, tuple[str, ...]] = {
            "image-classification": ("image", "classification"),
            "text-classification": ("text", "classification"),
            "tabular-classification": ("tabular", "classification"),
            "anomaly-detection": ("anomaly",),
            "text-generation": ("generation",),
            "image-generation": ("image_generation",),
            "tensor": (),
        }
        missing = [s for s in required[self.task] if getattr(self, s) is None]
        if missing:
            raise ValueError(f"task {self.task!r} needs section(s): {', '.join(missing)}")
        names = {t.name for t in self.outputs}
        for section, field in (("classification", "probabilities"), ("anomaly", "score")):
            settings = getattr(self, section)
            wanted = getattr(settings, field) if settings is not None else None
            if wanted is not None and names and wanted not in names:
                raise ValueError(
                    f"{section}.{field} names output {wanted!r}, which is not among outputs {sorted(names)}"
                )
        return self


class ConfigError(ValueError):
    """A config.yaml that cannot be used; the message names the file and the field."""


def is_valid_model_name(name: str) -> bool:
    """Whole-string match: `$` alone would also accept a name ending in a newline."""
    return bool(_MODEL_NAME_RE.fullmatch(name))


def is_version_dir(path: Path) -> bool:
    return path.is_dir() and bool(_VERSION_RE.match(path.name))


def list_versions(model_dir: Path) -> list[int]:
    """Numeric version folders that hold a model file, ascending."""
    return sorted(int(p.name) for p in model_dir.iterdir() if is_version_dir(p))


def select_versions(policy: VersionPolicy, available: list[int]) -> list[int]:
    """Apply a Triton-style version policy to the versions present on disk."""
    if isinstance(policy, AllPolicy):
        return sorted(available)
    if isinstance(policy, SpecificPolicy):
        return sorted(v for v in set(policy.specific) if v in available)
    return sorted(available)[-policy.latest :]


def load_config(model_dir: Path) -> ModelConfig:
    """Read `<model_dir>/config.yaml`; a missing file gives the defaults (a `tensor` model)."""
    path = model_dir / CONFIG_FILE
    if not path.exists():
        return ModelConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = ModelConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            + (f" (got {err['input']!r})" if err["loc"] and err["type"] != "missing" else "")
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    if config.name is not None and config.name != model_dir.name:
        raise ConfigError(f"{path}: name: {config.name!r} differs from the directory name {model_dir.name!r}")
    return config


def _without_default_nones(model: BaseModel) -> dict[str, Any]:
    """The model's fields as JSON values, leaving out a None only where None is also the default: an
    absent section stays absent, while an explicit None (say `text.attention_mask`) survives the trip."""
    data: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None and field.default is None:
            continue
        if isinstance(value, BaseModel):
            data[name] = _without_default_nones(value)
        else:
            data[name] = model.model_dump(mode="json", include={name})[name]
    return data


def dump_config(config: ModelConfig) -> str:
    """YAML text for a config, omitting unset sections so files stay short and readable."""
    return yaml.safe_dump(_without_default_nones(config), sort_keys=False, allow_unicode=True)


def write_config(model_dir: Path, config: ModelConfig) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / CONFIG_FILE
    path.write_text(dump_config(config), encoding="utf-8")
    return path
