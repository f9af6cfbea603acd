"""The v2 statistics extension: Triton's JSON shape and counting rules."""

from __future__ import annotations

import threading

from service.batching import BatchReport, RequestTiming
from service.statistics import ModelStatistics, Statistics

D = {"count", "ns"}


def batch(*samples: int, error: Exception | None = None) -> BatchReport:
    return BatchReport(tuple(RequestTiming(n, 0.001) for n in samples), 0.0001, 0.002, 0.0003, error=error)


def test_to_json_has_the_triton_shape() -> None:
    stats = Statistics()
    stats.model("m", "1").batch_executed(batch(2))
    (entry,) = stats.to_json()["model_stats"]
    assert entry.keys() == {
        "name", "version", "last_inference", "inference_count", "execution_count",
        "inference_stats", "response_stats", "memory_usage", "batch_stats",
    }  # fmt: skip
    assert entry["inference_stats"].keys() == {
        "success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
        "cache_hit", "cache_miss",
    }  # fmt: skip
    assert all(d.keys() == D for d in entry["inference_stats"].values())
    assert (entry["name"], entry["version"], entry["response_stats"], entry["memory_usage"]) == (
        "m",
        "1",
        {},
        [],
    )
    assert entry["batch_stats"][0].keys() == {
        "batch_size",
        "compute_input",
        "compute_infer",
        "compute_output",
    }
    assert entry["last_inference"] > 1_700_000_000_000


def test_counts_follow_triton_rules() -> None:
    stats = ModelStatistics("m", "1")
    stats.batch_executed(batch(1, 2, 1))
    stats.batch_executed(batch(4))
    stats.batch_executed(batch(1, 1, error=RuntimeError("boom")))
    stats.request_dropped("deadline", 0.5)
    entry = stats.to_json()
    assert (entry["inference_count"], entry["execution_count"]) == (8, 2)
    inference = entry["inference_stats"]
    assert inference["success"]["count"] == 4
    assert inference["queue"] == {"count": 4, "ns": 4_000_000}
    assert inference["compute_infer"] == {"count": 4, "ns": 8_000_000}
    assert inference["success"]["ns"] == 4 * 3_400_000
    assert inference["fail"] == {"count": 3, "ns": 2 * 3_400_000 + 500_000_000}
    assert [(b["batch_size"], b["compute_infer"]) for b in entry["batch_stats"]] == [
        (4, {"count": 2, "ns": 4_000_000}),
    ]


def test_to_json_filters_by_name_and_version() -> None:
    stats = Statistics()
    for name, version in [("b", "1"), ("a", "10"), ("a", "2")]:
        stats.model(name, version)
    assert [(e["name"], e["version"]) for e in stats.to_json()["model_stats"]] == [
        ("a", "2"),
        ("a", "10"),
        ("b", "1"),
    ]
    assert [e["version"] for e in stats.to_json("a")["model_stats"]] == ["2", "10"]
    assert [e["name"] for e in stats.to_json("a", "10")["model_stats"]] == ["a"]
    assert stats.to_json("missing") == {"model_stats": []}
    assert [e["version"] for e in stats.to_json("a", served={("a", "10"), ("b", "1")})["model_stats"]] == ["10"]


def test_batch_executed_is_exact_under_concurrent_threads() -> None:
    stats = ModelStatistics("m", "1")

    def hammer() -> None:
        for _ in range(500):
            stats.batch_executed(batch(2, 1))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entry = stats.to_json()
    assert (entry["inference_count"], entry["execution_count"]) == (6000, 2000)
    assert entry["inference_stats"]["queue"]["count"] == 4000
