"""The load-test helpers that decide verdicts and parse wire formats, on hand-made inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.httpload import parse_response
from loadtests.profile import package_of, summarize
from loadtests.run import parse_duration
from loadtests.stats import EndpointStats, check_limits, percentile, read_final_stats
from loadtests.streaming import TTFT, sse_data


def _row(name: str, requests: int, failures: int = 0, p95: float = 10.0, type_: str = "POST") -> EndpointStats:
    return EndpointStats(type_, name, requests, failures, rps=1.0, p50=5.0, p95=p95, p99=p95, max=p95)


def test_check_limits_passes_when_within_limits() -> None:
    rows = [_row("/a", 100, failures=1), _row("Aggregated", 100, 1, type_="")]
    assert check_limits(rows, max_error_rate=0.01, max_p95_ms=50, max_ttft_p95_ms=None) == []


def test_check_limits_fails_on_error_rate() -> None:
    problems = check_limits([_row("/a", 100, failures=2)], max_error_rate=0.01, max_p95_ms=None, max_ttft_p95_ms=None)
    assert len(problems) == 1 and "error rate 2.00% (2/100)" in problems[0]


def test_check_limits_names_the_slow_endpoint() -> None:
    rows = [_row("/fast", 100, p95=5), _row("/slow", 100, p95=80), _row("Aggregated", 200, p95=40, type_="")]
    problems = check_limits(rows, max_error_rate=0.0, max_p95_ms=50, max_ttft_p95_ms=None)
    assert problems == ["POST /slow: p95 80 ms exceeds 50 ms"]


def test_check_limits_keeps_ttft_out_of_request_limits() -> None:
    rows = [_row("/stream", 10, p95=900), _row("/stream", 10, p95=300, type_=TTFT)]
    assert check_limits(rows, 0.0, max_p95_ms=1000, max_ttft_p95_ms=None) == []
    assert check_limits(rows, 0.0, max_p95_ms=1000, max_ttft_p95_ms=200) == ["TTFT /stream: p95 300 ms exceeds 200 ms"]


def test_check_limits_fails_when_nothing_was_requested() -> None:
    problems = check_limits([_row("Aggregated", 0, type_="")], 0.01, None, None)
    assert problems and "no requests" in problems[0]


@pytest.mark.parametrize(("text", "seconds"), [("15", 15.0), ("15s", 15.0), ("2m", 120.0), ("1h", 3600.0)])
def test_parse_duration_accepts_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_sse_data_joins_events_split_across_chunks() -> None:
    chunks = [
        b'data: {"text_output": "a"}\r\n',
        b"\r\ndata: ",
        b'{"text_output": "b"}\n\n: ping\n\n',
        b"data: [DONE]\n\n",
    ]
    assert list(sse_data(chunks)) == [b'{"text_output": "a"}', b'{"text_output": "b"}', b"[DONE]"]


def test_parse_response_frames_by_content_length() -> None:
    buffer = bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404")
    assert parse_response(buffer) == (200, b"hello", len(buffer) - len(b"HTTP/1.1 404"))
    assert parse_response(bytearray(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel")) is None


def test_parse_response_joins_chunked_body() -> None:
    full = b"HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert parse_response(bytearray(full)) == (503, b"abcde", len(full))
    assert parse_response(bytearray(full[:-2])) is None


def test_percentile_matches_locust_histogram_walk() -> None:
    histogram = {10.0: 90, 100.0: 9, 1000.0: 1}
    fractions = (0.5, 0.9, 0.95, 0.99, 1.0)
    assert [percentile(histogram, 100, f) for f in fractions] == [10.0, 100.0, 100.0, 1000.0, 1000.0]


def _entry(method: str, name: str, times: dict[str, int], failures: int = 0) -> dict[str, object]:
    count = sum(times.values())
    return {
        "method": method, "name": name, "num_requests": count, "num_failures": failures,
        "response_times": times, "start_time": 100.0, "last_request_timestamp": 110.0,
        "max_response_time": max(map(float, times)),
    }  # fmt: skip


def test_read_final_stats_aggregates_requests_without_ttft(tmp_path: Path) -> None:
    entries = [
        _entry("POST", "/b", {"20": 10}, failures=1),
        _entry(TTFT, "/b", {"5": 10}),
        _entry("POST", "/a", {"10": 30}),
    ]
    (tmp_path / "final.json").write_text(json.dumps(entries))
    rows = read_final_stats(tmp_path / "final.json")
    assert [(r.type, r.name, r.requests, r.failures) for r in rows] == [
        ("POST", "/a", 30, 0), ("POST", "/b", 10, 1), (TTFT, "/b", 10, 0), ("", "Aggregated", 40, 1),
    ]  # fmt: skip
    assert rows[-1].p50 == 10.0 and rows[-1].p95 == 20.0 and rows[-1].rps == 4.0


def test_package_of_names_the_top_level_package() -> None:
    assert package_of("Server.run (uvicorn/server.py:86)") == "uvicorn"
    assert package_of("AsyncExitStack.__aenter__ (contextlib.py:695)") == "contextlib.py"
    assert package_of("") == "(native)"


def test_summarize_attributes_self_time_to_the_innermost_frame(tmp_path: Path) -> None:
    collapsed = tmp_path / "stacks"
    collapsed.write_text("main (service/cli.py:1);run (onnxruntime/x.py:2) 3\nmain (service/cli.py:1) 1\n")
    text = summarize(collapsed, top=5)
    assert text.splitlines()[:4] == ["4 samples", "self time by package:", "   75.0%  onnxruntime", "   25.0%  service"]
    assert "  100.0%  main (service/cli.py:1)" in text
