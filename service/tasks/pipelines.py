"""One pipeline per task: instances -> model inputs, model outputs -> answers. No HTTP here.

Built when a version loads (the repository calls `Pipelines.prepare`), so a missing tokenizer or a config
that does not fit the graph fails that version's load with a reason instead of failing requests later.
"""

from __future__ import annotations

import asyncio
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from service.errors import InvalidInput
from service.runtime.datatypes import V2_TO_NUMPY
from service.runtime.model import ServedModel, Tensors
from service.runtime.session import LoadError
from service.schema.config import AnomalySettings, ClassificationSettings, ImagePreprocessing, TensorSpec
from service.schema.tabular import TabularPreprocessing
from service.tasks.anomaly import verdicts
from service.tasks.classification import top_k
from service.tasks.image import RequestBudget, decode_b64, preprocess_image
from service.tasks.tabular import RowEncoder
from service.tasks.text import TextEncoder
from service.tasks.vectors import as_sample

if TYPE_CHECKING:
    from service.tasks.image_generation import GenerationOptions


MAX_GENERATED_IMAGES = 256
"""Default of the `max_generated_images` setting (service/settings.py)."""


@dataclass(frozen=True)
class Instance:
    where: str
    """How errors name it: `instances[2]` or `files[0] 'digit.png'`."""
    value: Any
    """A JSON value, or the bytes of an uploaded file."""


class Pipeline(ABC):
    missing_as_nan: bool = False
    """True when `preprocess` writes NaN on purpose (a missing tabular value the graph imputes); the route
    then skips its NaN/infinity check, and the pipeline itself refuses non-finite values a client sent."""

    def for_request(self, options: GenerationOptions) -> Pipeline:
        """This pipeline bound to one request's parameters; only image generation takes any (and keeps
        per-request state), every other task refuses them and is shared as it is."""
        given = options.given()
        if given:
            raise InvalidInput(f"parameters.{given[0]}: only image-generation models take it")
        return self

    @abstractmethod
    def preprocess(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        """`budget`: what the request's pictures may cost and when to stop decoding them (see image.py)."""

    @abstractmethod
    def postprocess(self, outputs: Tensors, top_k: int) -> list[dict[str, Any]]: ...


def _output(model: ServedModel, name: str, field: str) -> TensorSpec:
    for spec in model.outputs:
        if spec.name == name:
            return spec
    raise LoadError(f"{field}: names output {name!r}, which is not among {[s.name for s in model.outputs]}")


def _single_input(model: ServedModel) -> TensorSpec:
    if len(model.inputs) != 1:
        raise LoadError(
            f"task {model.config.task}: needs a model with exactly one input, this graph has "
            f"{[s.name for s in model.inputs]}"
        )
    return model.inputs[0]


class SampleEncoder:
    """Pictures (base64 or uploaded) and nested arrays -> a batch for the model's single input."""

    def __init__(self, model: ServedModel, image: ImagePreprocessing | None, max_pixels: int | None = None) -> None:
        self.spec = _single_input(model)
        self.dtype = V2_TO_NUMPY[self.spec.datatype]
        self.image = image
        self.max_pixels = max_pixels
        """The server's limit on a picture's pixels; the model's `image.max_pixels` applies when lower."""
        self.model_name = model.name
        dims = self.spec.shape[1:]
        if image is not None:
            expected = (image.channels, image.height, image.width)
            if len(dims) != 3 or any(d not in (-1, e) for d, e in zip(dims, expected, strict=True)):
                raise LoadError(
                    f"image: channels/height/width {list(expected)} do not fit input {self.spec.name!r} "
                    f"of shape {self.spec.shape} (expected [-1, C, H, W])"
                )
            self.sample_shape: tuple[int, ...] = expected
        elif any(d == -1 for d in dims):
            raise LoadError(
                f"input {self.spec.name!r} {self.spec.shape}: vectors need fixed dims past the batch axis"
            )
        else:
            self.sample_shape = tuple(dims)

    def encode(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        """The batch; with a `budget`, the pictures' pixels are added up from their headers before any is
        decoded, and a cancelled or late request stops before its next picture."""
        values = [self._encoded_picture(instance) for instance in instances]
        if budget is not None:
            budget.charge([(i.where, raw) for i, raw in zip(instances, values, strict=True) if isinstance(raw, bytes)])
        samples = []
        for instance, value in zip(instances, values, strict=True):
            if budget is not None:
                budget.before(instance.where)
            samples.append(self._sample(value, instance.where))
        return {self.spec.name: np.stack(samples)}  # (N, *sample_shape)

    @staticmethod
    def _encoded_picture(instance: Instance) -> Any:
        """An instance's value, with a `{"b64": ...}` picture as its bytes."""
        value, where = instance.value, instance.where
        if isinstance(value, dict):
            if set(value) != {"b64"}:
                raise InvalidInput(
                    f'{where}: an object instance must be {{"b64": ...}}, got keys {sorted(value)}'
                )
            return decode_b64(value["b64"], where)
        return value

    def _sample(self, value: Any, where: str) -> np.ndarray[Any, Any]:
        if isinstance(value, bytes):
            return self._picture(value, where)
        if isinstance(value, list):
            return as_sample(value, self.sample_shape, self.dtype, where)
        raise InvalidInput(f'{where}: expected {{"b64": ...}} or nested numbers, got {type(value).__name__}')

    def _picture(self, raw: bytes, where: str) -> np.ndarray[Any, Any]:
        if self.image is None:
            raise InvalidInput(
                f"{where}: model {self.model_name!r} takes vectors, not pictures (no image section)"
            )
        return preprocess_image(raw, self.image, where, self.max_pixels).astype(self.dtype)


class TabularEncoder:
    """Rows (objects by column name, or arrays in column order) -> the feature matrix of the tabular input."""

    def __init__(self, model: ServedModel, schema: TabularPreprocessing) -> None:
        spec = _single_input(model)
        if spec.name != schema.input:
            raise LoadError(f"tabular.input: names {schema.input!r}, the graph's input is {spec.name!r}")
        if spec.datatype not in ("FP16", "FP32", "FP64"):
            raise LoadError(f"tabular: input {spec.name!r} is {spec.datatype}; the feature vector needs a float input")
        if len(spec.shape) != 2 or spec.shape[1] not in (-1, schema.n_features):
            raise LoadError(
                f"tabular: the columns make {schema.n_features} features; input {spec.name!r} has shape "
                f"{spec.shape} (expected [-1, {schema.n_features}])"
            )
        self.name = spec.name
        self.dtype = V2_TO_NUMPY[spec.datatype]
        self.rows = RowEncoder(schema)

    def encode(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        """`budget` is for pictures; a table row costs no decoding."""
        features = self.rows.encode([i.value for i in instances], [i.where for i in instances])  # (N, F)
        return {self.name: features if self.dtype == np.float32 else features.astype(self.dtype)}


class ImageClassifier(Pipeline):
    def __init__(
        self,
        model: ServedModel,
        image: ImagePreprocessing,
        classification: ClassificationSettings,
        max_pixels: int | None = None,
    ) -> None:
        self.encoder = SampleEncoder(model, image, max_pixels)
        self.classification = _checked_classification(model, classification)

    def preprocess(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        return self.encoder.encode(instances, budget)

    def postprocess(self, outputs: Tensors, k: int) -> list[dict[str, Any]]:
        return top_k(outputs[self.classification.probabilities], self.classification.labels, k)


class TextClassifier(Pipeline):
    def __init__(self, model: ServedModel, classification: ClassificationSettings) -> None:
        text = model.config.text
        assert text is not None  # the schema requires it for text-classification
        names = {s.name for s in model.inputs}
        wanted = {text.input_ids} | ({text.attention_mask} if text.attention_mask else set())
        if names != wanted:
            raise LoadError(
                f"text: input_ids/attention_mask name {sorted(wanted)}; the graph's inputs: {sorted(names)}"
            )
        dtypes = {s.name: V2_TO_NUMPY[s.datatype] for s in model.inputs}
        self.encoder = TextEncoder(text, model.directory, dtypes)
        self.classification = _checked_classification(model, classification)

    def preprocess(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        return self.encoder.encode([i.value for i in instances], [i.where for i in instances])

    def postprocess(self, outputs: Tensors, k: int) -> list[dict[str, Any]]:
        return top_k(outputs[self.classification.probabilities], self.classification.labels, k)


class TabularClassifier(Pipeline):
    missing_as_nan = True

    def __init__(
        self, model: ServedModel, schema: TabularPreprocessing, classification: ClassificationSettings
    ) -> None:
        self.encoder = TabularEncoder(model, schema)
        self.classification = _checked_classification(model, classification)

    def preprocess(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        return self.encoder.encode(instances)

    def postprocess(self, outputs: Tensors, k: int) -> list[dict[str, Any]]:
        return top_k(outputs[self.classification.probabilities], self.classification.labels, k)


class AnomalyDetector(Pipeline):
    """Pictures or vectors (SampleEncoder), or table rows when the config has a `tabular` section."""

    def __init__(self, model: ServedModel, anomaly: AnomalySettings, max_pixels: int | None = None) -> None:
        schema = model.config.tabular
        self.encoder: SampleEncoder | TabularEncoder
        if schema is not None:
            self.encoder = TabularEncoder(model, schema)
            self.missing_as_nan = True
        else:
            self.encoder = SampleEncoder(model, model.config.image, max_pixels)
        _output(model, anomaly.score, "anomaly.score")
        self.anomaly = anomaly

    def preprocess(self, instances: Sequence[Instance], budget: RequestBudget | None = None) -> Tensors:
        return self.encoder.encode(instances, budget)

    def postprocess(self, outputs: Tensors, k: int) -> list[dict[str, Any]]:
        return verdicts(outputs[self.anomaly.score], self.anomaly)


def _checked_classification(model: ServedModel, settings: ClassificationSettings) -> ClassificationSettings:
    spec = _output(model, settings.probabilities, "classification.probabilities")
    if spec.shape[-1] not in (-1, len(settings.labels)):
        raise LoadError(
            f"classification.labels: {len(settings.labels)} labels, output {spec.name!r} is {spec.shape}"
        )
    return settings


def build_pipeline(
    model: ServedModel, max_image_pixels: int | None = None, max_generated_images: int = MAX_GENERATED_IMAGES
) -> Pipeline | None:
    """The pipeline for the model's task; None for tasks served through other endpoints only.

    `max_image_pixels`: the server's cap on a picture's size, on top of the model's own;
    `max_generated_images`: the most images one image-generation request may ask for.
    """
    config = model.config
    if config.task == "image-classification" and config.image and config.classification:
        return ImageClassifier(model, config.image, config.classification, max_image_pixels)
    if config.task == "text-classification" and config.classification:
        return TextClassifier(model, config.classification)
    if config.task == "tabular-classification" and config.tabular and config.classification:
        return TabularClassifier(model, config.tabular, config.classification)
    if config.task == "anomaly-detection" and config.anomaly:
        return AnomalyDetector(model, config.anomaly, max_image_pixels)
    if config.task == "image-generation" and config.image_generation:
        from service.tasks.image_generation import ImageGenerator  # subclasses Pipeline: imported late

        return ImageGenerator(model, config.image_generation, max_generated_images)
    return None


class Pipelines:
    """The pipeline of every served version, dropped with the version when it is retired and collected."""

    def __init__(self, max_image_pixels: int | None = None, max_generated_images: int = MAX_GENERATED_IMAGES) -> None:
        self._by_model: weakref.WeakKeyDictionary[ServedModel, Pipeline] = weakref.WeakKeyDictionary()
        self.max_image_pixels = max_image_pixels
        self.max_generated_images = max_generated_images

    def prepare(self, model: ServedModel) -> None:
        pipeline = build_pipeline(model, self.max_image_pixels, self.max_generated_images)
        if pipeline is not None:
            self._by_model[model] = pipeline

    def get(self, model: ServedModel) -> Pipeline:
        pipeline = self._by_model.get(model)
        if pipeline is None:
            raise InvalidInput(
                f"model {model.name!r} has task {model.config.task!r}, which :predict does not serve; "
                f"use POST /v2/models/{model.name}/infer"
            )
        return pipeline


async def preprocess_in_thread(pipeline: Pipeline, instances: Sequence[Instance], budget: RequestBudget) -> Tensors:
    """`pipeline.preprocess` off the event loop (decoding pictures is CPU work that releases the GIL).

    A worker thread cannot be cancelled; when the awaiting request is (its client went away), the budget
    is marked so the thread stops before its next picture instead of decoding the rest for no one.
    """
    try:
        return await asyncio.to_thread(pipeline.preprocess, instances, budget)
    except asyncio.CancelledError:
        budget.cancel()
        raise
