"""KServe v1 / TF-Serving style `:predict`: `{"instances": [...], "parameters": {"top_k": 3}}`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import InvalidInput, PayloadTooLarge
from service.protocol.infer import describe_validation_error, parse_json
from service.protocol.limits import ascii_integer, shown
from service.schema.image_generation import MAX_SCALE
from service.tasks.classification import DEFAULT_TOP_K
from service.tasks.image_generation import GenerationOptions
from service.tasks.latents import TEMPERATURE_RANGE
from service.tasks.pipelines import Instance


class PredictParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    top_k: int = Field(
        default=DEFAULT_TOP_K, ge=1, description="Classifiers: how many labels to rank per instance."
    )
    raw: bool | None = Field(default=None, description="Image generation: also answer each image's pixel values.")
    scale: int | None = Field(
        default=None, ge=1, le=MAX_SCALE, description="Image generation: PNG enlargement (default: the config's)."
    )
    temperature: float | None = Field(
        default=None,
        ge=TEMPERATURE_RANGE[0],
        le=TEMPERATURE_RANGE[1],
        description="Image generation: multiplies the latent z (1 = as trained; lower = more typical images).",
    )

    def generation(self) -> GenerationOptions:
        return GenerationOptions(raw=self.raw, scale=self.scale, temperature=self.temperature)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    instances: list[Any] = Field(
        description='Images as `{"b64": "<PNG/JPEG...>"}` or nested pixel values (already model values); '
        "strings for text models; table rows (objects by column name, or arrays in column order) for tabular "
        "models; vectors, images or table rows for anomaly models; "
        '`{"label": "7", "seed": 3, "count": 1}` for image-generation models.'
    )
    parameters: PredictParameters = Field(default_factory=PredictParameters)


class RankedLabel(BaseModel):
    label: str
    score: float


class ClassPrediction(BaseModel):
    label: str
    score: float
    top_k: list[RankedLabel]


class AnomalyPrediction(BaseModel):
    score: float
    threshold: float
    is_anomaly: bool


class GeneratedImage(BaseModel):
    b64: str = Field(description="PNG, base64.")
    pixels: list[Any] | None = Field(None, description='Model values [C][H][W], with `"raw": true`.')


class GenerationPrediction(BaseModel):
    label: str | None = Field(None, description="The class asked for (conditional models).")
    seed: int = Field(description="The seed used: the one sent, or the one drawn for this instance.")
    count: int
    images: list[GeneratedImage]


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[ClassPrediction | AnomalyPrediction | GenerationPrediction]


class VersionStatus(BaseModel):
    version: str = Field(description="Empty when the problem concerns the whole model.")
    state: str = Field(description="READY, LOADING or UNAVAILABLE.")
    reason: str
    provider: str | None


class ModelStatus(BaseModel):
    name: str
    ready: bool
    task: str | None
    versions: list[VersionStatus]


def check_count(instances: Sequence[Any], limit: int, field: str) -> None:
    if not instances:
        raise InvalidInput(f"{field}: empty; send at least one instance")
    if len(instances) > limit:
        raise PayloadTooLarge(f"{field}: {len(instances)} given, more than max_instances ({limit})")


def parse_predict_request(body: bytes, limit: int) -> tuple[list[Instance], PredictParameters]:
    """(instances, parameters) from a JSON body."""
    try:
        request = PredictRequest.model_validate(parse_json(body))
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from None
    check_count(request.instances, limit, "instances")
    instances = [Instance(f"instances[{i}]", value) for i, value in enumerate(request.instances)]
    return instances, request.parameters


def parse_predict_body(body: bytes, limit: int) -> tuple[list[Instance], int]:
    """(instances, top_k) from a JSON body."""
    instances, parameters = parse_predict_request(body, limit)
    return instances, parameters.top_k


TOP_K_DIGITS = 9


def parse_top_k(raw: str) -> int:
    """A multipart `top_k` field: ASCII digits only (see `ascii_integer`)."""
    k = ascii_integer(raw.strip(), TOP_K_DIGITS)
    if k is None or k < 1:
        raise InvalidInput(
            f"top_k: expected a positive integer of at most {TOP_K_DIGITS} ASCII digits, got {shown(raw)}"
        )
    return k
