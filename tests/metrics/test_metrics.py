"""Prometheus metrics: names, labels and values in the rendered text, fed through the batcher hook."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from prometheus_client.parser import text_string_to_metric_families

from service.batching import Batcher, BatchPolicy, BatchReport, RequestTiming
from service.metrics import Metrics

NAMES = [
    "nnserve_requests_total",
    "nnserve_request_duration_seconds",
    "nnserve_queue_duration_seconds",
    "nnserve_inference_duration_seconds",
    "nnserve_batch_size",
    "nnserve_queue_depth",
    "nnserve_dropped_requests_total",
    "nnserve_model_ready",
    "nnserve_generated_tokens_total",
    "nnserve_time_to_first_token_seconds",
    "nnserve_time_per_output_token_seconds",
    "nnserve_active_sequences",
    "process_cpu_seconds_total",
    "python_info",
]


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted(labels.items())))]


def exercise(metrics: Metrics) -> None:
    metrics.observe_request(model="m", version="1", endpoint="v2_infer", code=200, seconds=0.003)
    metrics.set_model_ready(model="m", version="1", provider="cpu", ready=True)
    hook = metrics.batch_observer("m", "1")
    hook.queue_depth_changed(2)
    hook.queue_depth_changed(-1)
    report = BatchReport((RequestTiming(3, 0.001), RequestTiming(1, 0.0005)), 1e-5, 0.002, 1e-5)
    hook.batch_executed(report)
    hook.request_dropped("queue_full", 0.0)
    generation = metrics.generation("gpt", "2")
    generation.sequence_started()
    generation.first_token(0.02)
    generation.next_token(0.004)
    generation.tokens_generated(5)


def test_render_contains_every_metric_name() -> None:
    metrics = Metrics()
    exercise(metrics)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    for name in NAMES:
        assert f"\n{name}" in body.decode(), name


def test_render_reports_exercised_values_with_labels() -> None:
    metrics = Metrics(process_collectors=False)
    exercise(metrics)
    m1 = {"model": "m", "version": "1"}
    assert value(metrics, "nnserve_requests_total", **m1, endpoint="v2_infer", code="200", protocol="http") == 1
    bucket = {"endpoint": "v2_infer", "protocol": "http", "le": "0.005"}
    assert value(metrics, "nnserve_request_duration_seconds_bucket", **m1, **bucket) == 1
    assert value(metrics, "nnserve_queue_depth", **m1) == 1
    assert value(metrics, "nnserve_queue_duration_seconds_count", **m1) == 2
    assert value(metrics, "nnserve_inference_duration_seconds_sum", **m1) == pytest.approx(0.002)
    assert value(metrics, "nnserve_batch_size_bucket", **m1, le="2.0") == 0
    assert value(metrics, "nnserve_batch_size_bucket", **m1, le="4.0") == 1
    assert value(metrics, "nnserve_dropped_requests_total", **m1, reason="queue_full") == 1
    assert value(metrics, "nnserve_model_ready", **m1, provider="cpu") == 1
    gpt = {"model": "gpt", "version": "2"}
    assert value(metrics, "nnserve_generated_tokens_total", **gpt) == 5
    assert value(metrics, "nnserve_active_sequences", **gpt) == 1
    assert value(metrics, "nnserve_time_to_first_token_seconds_count", **gpt) == 1
    assert value(metrics, "nnserve_time_per_output_token_seconds_count", **gpt) == 1


def test_two_apps_keep_separate_registries() -> None:
    first, second = Metrics(), Metrics()
    exercise(first)
    exercise(first)
    exercise(second)
    labels = {"model": "m", "version": "1", "endpoint": "v2_infer", "code": "200", "protocol": "http"}
    assert value(first, "nnserve_requests_total", **labels) == 2
    assert value(second, "nnserve_requests_total", **labels) == 1


def test_set_model_ready_replaces_series_of_previous_provider() -> None:
    metrics = Metrics(process_collectors=False)
    metrics.set_model_ready(model="m", version="1", provider="cuda", ready=True)
    metrics.set_model_ready(model="m", version="1", provider="cpu", ready=False)
    ready = {k: v for k, v in samples(metrics).items() if k[0] == "nnserve_model_ready"}
    assert ready == {("nnserve_model_ready", (("model", "m"), ("provider", "cpu"), ("version", "1"))): 0.0}


def test_sync_model_ready_publishes_states_and_drops_forgotten_versions() -> None:
    metrics = Metrics(process_collectors=False)
    metrics.sync_model_ready({("m", "1"): ("cpu", True), ("m", "2"): ("", False), ("broken", ""): ("", False)})
    metrics.sync_model_ready({("m", "2"): ("cuda", True), ("broken", ""): ("", False)})
    ready = {
        tuple(v for _, v in labels): value
        for (name, labels), value in samples(metrics).items()
        if name == "nnserve_model_ready"
    }
    assert ready == {("m", "cuda", "2"): 1.0, ("broken", "", ""): 0.0}


def test_observe_request_counts_each_label_set_apart() -> None:
    metrics = Metrics(process_collectors=False)
    for code in (200, 200, 503):
        metrics.observe_request(model="m", version="1", endpoint="infer", code=code, seconds=0.001)
    m1 = {"model": "m", "version": "1", "endpoint": "infer", "protocol": "http"}
    assert value(metrics, "nnserve_requests_total", **m1, code="200") == 2
    assert value(metrics, "nnserve_requests_total", **m1, code="503") == 1
    assert value(metrics, "nnserve_request_duration_seconds_count", **m1) == 3


def test_render_speaks_openmetrics_when_the_scraper_asks() -> None:
    metrics = Metrics(process_collectors=False)
    exercise(metrics)
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_batch_observer_follows_a_real_batcher() -> None:
    weight = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    metrics = Metrics(process_collectors=False)

    async def scenario(executor: ThreadPoolExecutor) -> None:
        policy = BatchPolicy(max_batch_size=4, exact_batch_requests=4)
        batcher = Batcher(
            lambda inputs: {"y": session.run(["y"], inputs)[0]},
            policy,
            executor,
            observers=[metrics.batch_observer("identity", "1")],
        )
        await asyncio.gather(*(batcher.submit({"x": np.ones((1, 2), np.float32)}) for _ in range(8)))
        await batcher.stop()

    with ThreadPoolExecutor(max_workers=1) as executor:
        asyncio.run(scenario(executor))
    m = {"model": "identity", "version": "1"}
    assert value(metrics, "nnserve_batch_size_count", **m) == 2
    assert value(metrics, "nnserve_batch_size_sum", **m) == 8
    assert value(metrics, "nnserve_queue_duration_seconds_count", **m) == 8
    assert value(metrics, "nnserve_queue_depth", **m) == 0
