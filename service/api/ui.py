"""The built-in playground and status page: `/`, its static files, and the little JSON the page needs that
the public API does not give (live figures, model cards, the input tensor a model actually receives).

Everything else the page shows it fetches from the public endpoints a client would call (`/v2`, the
repository index, model metadata and config, `:predict`, `/infer`, `/generate_stream`), so the page is
also a working example of them. Reference: docs/playground.md.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import mimetypes
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from service.api.body import read_body
from service.api.deps import PipelinesDep, RepositoryDep, SettingsDep, leased_model, request_deadline
from service.api.pictures import picture_budget
from service.errors import ModelNotFound, ServiceError
from service.metrics import Metrics
from service.protocol.limits import check_text_length
from service.protocol.predict import parse_predict_request
from service.protocol.tensors import to_json
from service.repository.registry import ModelRepository
from service.responses import OrjsonResponse
from service.schema.config import CARD_FILE, CURVES_FILE, METRICS_FILE
from service.tasks.pipelines import preprocess_in_thread

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
HISTORY_S = 120.0
"""How far back the live charts reach."""
MIN_SAMPLE_INTERVAL_S = 0.5
"""Polls closer together than this reuse the last sample, so several open pages do not add noise."""
CURRENT_S = 10.0
"""The `current` figures (the live table) average over about this long, so they do not flicker."""
FIGURES = ("rps", "error_rps", "p50_ms", "p99_ms", "batch", "queue", "tps")
NO_STORE = {"Cache-Control": "no-store"}


def create_router(enabled: bool = True) -> APIRouter:
    """The page's routes, or an empty router when the page is off (NNSERVE_UI=false: `/` is 404).

    Create one router per app: it holds that app's history of live samples.
    """
    router = APIRouter(tags=["Playground"], include_in_schema=False)
    if not enabled:
        return router
    started = time.monotonic()
    live = LiveHistory()

    @router.get("/")
    async def index() -> Response:
        """The status page and playground."""
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.name != "index.html":
            router.add_api_route(f"/ui/static/{path.name}", _static_file(path), methods=["GET"])

    @router.get("/ui/stats")
    async def stats(request: Request, repository: RepositoryDep) -> Response:
        """Live figures per served model version over the last two minutes, sampled when polled."""
        now = time.monotonic()
        live.sample(_metrics(request), now)
        body = live.to_json(_served(repository), now)
        return OrjsonResponse({"uptime_s": round(now - started, 1), **body}, headers=NO_STORE)

    @router.get("/ui/cards")
    async def cards(repository: RepositoryDep) -> Response:
        """Model card text and test metrics of every served version, read from its version folder."""
        return OrjsonResponse(await asyncio.to_thread(_cards, repository), headers=NO_STORE)

    @router.get("/ui/models/{name}/versions/{version}/curves.png")
    async def curves(name: str, version: int, repository: RepositoryDep) -> Response:
        """The training curves the card refers to."""
        path = repository.lookup(name, version).directory / CURVES_FILE
        if not path.is_file():
            raise ModelNotFound(f"model {name!r} version {version} has no {CURVES_FILE}")
        return FileResponse(path)

    @router.post("/ui/models/{name}/preprocess")
    async def preprocess(request: Request, name: str, pipelines: PipelinesDep, settings: SettingsDep) -> Response:
        """`:predict` instances -> the v2 input tensors the model receives, by the model's own pipeline.

        The same checks as `:predict` (Content-Type, Content-Encoding, instance count, text length, picture
        budget), and like it the body is read before the version is leased, so a stalled upload holds no version."""
        instances, parameters = parse_predict_request(await read_body(request), settings.max_instances)
        for instance in instances:
            check_text_length(instance.value, instance.where, settings.max_text_chars)
        deadline = request_deadline(request)
        with leased_model(request, name) as model:
            pipeline = pipelines.get(model).for_request(parameters.generation())
            tensors = await preprocess_in_thread(pipeline, instances, picture_budget(request, model, deadline))
        inputs = [
            {
                "name": spec.name,
                "datatype": spec.datatype,
                "shape": list(tensors[spec.name].shape),
                "data": to_json(tensors[spec.name], spec.datatype, spec.name),
            }
            for spec in model.inputs
        ]
        return OrjsonResponse({"model_name": model.name, "model_version": str(model.version), "inputs": inputs})

    return router


def _static_file(path: Path) -> Callable[[], Awaitable[Response]]:
    """A route for one file of the page; only files present at start-up are served (no path lookups)."""
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".js":
        media_type = "text/javascript"

    async def static_file() -> Response:
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return static_file


def _metrics(request: Request) -> Metrics:
    metrics = getattr(request.app.state, "metrics", None)
    if not isinstance(metrics, Metrics):
        raise ServiceError("live figures: the app holds no service.metrics.Metrics at app.state.metrics")
    return metrics


def _served(repository: ModelRepository) -> dict[tuple[str, str], str]:
    """Task of every served version, keyed as the metrics label them."""
    return {
        (entry.name, str(version)): model.config.task
        for entry in repository.entries()
        for version, model in entry.served.items()
    }


def _cards(repository: ModelRepository) -> list[dict[str, Any]]:
    rows = []
    for entry in repository.entries():
        for version, model in sorted(entry.served.items()):
            card = model.directory / CARD_FILE
            rows.append(
                {
                    "name": entry.name,
                    "version": str(version),
                    "description": model.config.description,
                    "card": card.read_text(encoding="utf-8") if card.is_file() else None,
                    "test_metrics": _test_metrics(model.directory / METRICS_FILE),
                    "parameters": _parameter_count(model.directory / METRICS_FILE),
                    "curves": (model.directory / CURVES_FILE).is_file(),
                }
            )
    return rows


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a card that cannot be read shows no figures; serving does not depend on it


def _test_metrics(path: Path) -> dict[str, Any]:
    """The `test` section of metrics.json, flattened (`baseline.f1`), without its bookkeeping keys."""
    data = _read_json(path)
    test = data.get("test") if isinstance(data, dict) else None
    return dict(_flatten(test)) if isinstance(test, dict) else {}


def _parameter_count(path: Path) -> int | None:
    data = _read_json(path)
    count = data.get("parameters") if isinstance(data, dict) else None
    return count if isinstance(count, int) else None


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        elif key not in ("model", "version", "split") and isinstance(value, int | float | str):
            yield f"{prefix}{key}", value


# Live figures ------------------------------------------------------------------------------------------


@dataclass
class Counters:
    """Cumulative figures of one model version at one instant, as the Prometheus metrics hold them."""

    requests: float = 0.0
    errors: float = 0.0
    """Answers with a status of 400 or more."""
    latency: dict[float, float] = field(default_factory=dict)
    """Cumulative request count per histogram bucket upper bound (all endpoints together)."""
    batch_sum: float = 0.0
    batch_count: float = 0.0
    tokens: float = 0.0
    queue_depth: float = 0.0


def read_counters(metrics: Metrics) -> dict[tuple[str, str], Counters]:
    """Every (model, version) the metrics have seen; requests naming no known model are under ("", "")."""
    counters: dict[tuple[str, str], Counters] = {}

    def of(labels: Mapping[str, str]) -> Counters:
        return counters.setdefault((labels["model"], labels["version"]), Counters())

    for sample in _samples(metrics.requests, "_total"):
        row = of(sample.labels)
        row.requests += sample.value
        if sample.labels["code"].isdigit() and int(sample.labels["code"]) >= 400:
            row.errors += sample.value
    for sample in _samples(metrics.request_duration, "_bucket"):
        latency = of(sample.labels).latency
        bound = float(sample.labels["le"])
        latency[bound] = latency.get(bound, 0.0) + sample.value
    for sample in _samples(metrics.batch_size, "_sum"):
        of(sample.labels).batch_sum += sample.value
    for sample in _samples(metrics.batch_size, "_count"):
        of(sample.labels).batch_count += sample.value
    for sample in _samples(metrics.generated_tokens, "_total"):
        of(sample.labels).tokens += sample.value
    for sample in _samples(metrics.queue_depth, ""):
        of(sample.labels).queue_depth += sample.value
    return counters


def _samples(metric: Any, suffix: str) -> Iterable[Any]:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == family.name + suffix:
                yield sample


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' `histogram_quantile`: linear interpolation inside the bucket holding the q-th rank.

    `buckets` maps upper bounds (with +Inf) to cumulative counts; None when it counts nothing. A rank in
    the +Inf bucket reports the highest finite bound, as Prometheus does.
    """
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


@dataclass(frozen=True)
class Sample:
    at: float
    """time.monotonic() when read."""
    counters: dict[tuple[str, str], Counters]


class LiveHistory:
    """Samples of the metrics taken when the page polls, turned into per-second series for the charts.

    Sampling on demand needs no background task and costs nothing while nobody watches; a gap between
    polls shows as one long interval whose rates are averages over it.
    """

    def __init__(self, history_s: float = HISTORY_S, min_interval_s: float = MIN_SAMPLE_INTERVAL_S) -> None:
        self.history_s = history_s
        self.min_interval_s = min_interval_s
        self._samples: deque[Sample] = deque()

    def sample(self, metrics: Metrics, now: float) -> None:
        if self._samples and now - self._samples[-1].at < self.min_interval_s:
            return
        self._samples.append(Sample(now, read_counters(metrics)))
        # Keep one sample older than the window so the first interval inside it has a start.
        while len(self._samples) > 2 and now - self._samples[1].at > self.history_s:
            self._samples.popleft()

    def to_json(self, served: Mapping[tuple[str, str], str], now: float) -> dict[str, Any]:
        """Series per model version: `t` (seconds, 0 = now) and each figure, None where it is undefined."""
        latest = self._samples[-1].counters if self._samples else {}
        keys = sorted(set(served) | {k for k in latest if k[0]}, key=lambda k: (k[0], _version_key(k[1])))
        everything = Counters()  # requests naming no model (the page's own polls among them) left out
        for (name, _), counters in latest.items():
            if not name:
                continue
            everything.requests += counters.requests
            everything.errors += counters.errors
            everything.tokens += counters.tokens
        return {
            "window_s": self.history_s,
            "totals": _totals(everything),
            "models": [self._model(key, served.get(key), now) for key in keys],
        }

    def _model(self, key: tuple[str, str], task: str | None, now: float) -> dict[str, Any]:
        samples = list(self._samples)
        series: dict[str, list[float | None]] = {name: [] for name in ("t", *FIGURES)}
        for before, after in itertools.pairwise(samples):
            series["t"].append(round(after.at - now, 2))
            for name, value in _figures(key, before, after).items():
                series[name].append(value)
        current: dict[str, float | None] = dict.fromkeys(FIGURES)
        if len(samples) > 1:
            recent = [s for s in samples[:-1] if samples[-1].at - s.at <= CURRENT_S] or samples[-2:-1]
            current = _figures(key, recent[0], samples[-1])
        latest = samples[-1].counters.get(key, Counters()) if samples else Counters()
        return {
            "name": key[0],
            "version": key[1],
            "task": task,
            "totals": _totals(latest),
            "current": current,
            "series": series,
        }


def _figures(key: tuple[str, str], before: Sample, after: Sample) -> dict[str, float | None]:
    """Rates and latency quantiles between two samples; None where nothing happened to measure."""
    a, b = before.counters.get(key, Counters()), after.counters.get(key, Counters())
    seconds = after.at - before.at
    window = {bound: count - a.latency.get(bound, 0.0) for bound, count in b.latency.items()}
    p50, p99 = quantile(0.5, window), quantile(0.99, window)
    batches = b.batch_count - a.batch_count
    return {
        "rps": (b.requests - a.requests) / seconds,
        "error_rps": (b.errors - a.errors) / seconds,
        "p50_ms": None if p50 is None else p50 * 1000,
        "p99_ms": None if p99 is None else p99 * 1000,
        "batch": (b.batch_sum - a.batch_sum) / batches if batches else None,
        "queue": b.queue_depth,
        "tps": (b.tokens - a.tokens) / seconds,
    }


def _totals(counters: Counters) -> dict[str, int]:
    return {
        "requests": round(counters.requests),
        "errors": round(counters.errors),
        "tokens": round(counters.tokens),
    }


def _version_key(version: str) -> int:
    return int(version) if version.isdigit() else -1
