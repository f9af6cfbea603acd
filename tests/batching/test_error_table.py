"""The batcher's errors in the one HTTP error table: status, Retry-After, and what a client may read."""

from __future__ import annotations

import pytest

from service.batching import (
    BatcherStoppedError,
    BatchExecutionError,
    BatchOutputError,
    DeadlineExceededError,
    InvalidInputError,
    QueueFullError,
)
from service.errors import headers_for, message_for, status_for


@pytest.mark.parametrize(
    ("retry_after_s", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (2.3, "3"), (40.01, "41")]
)
def test_queue_full_is_503_with_whole_seconds_retry_after(retry_after_s: float, header: str) -> None:
    error = QueueFullError(256, retry_after_s)
    assert status_for(error) == 503
    assert headers_for(error) == {"Retry-After": header}


def test_statuses_of_the_other_batcher_errors() -> None:
    assert status_for(DeadlineExceededError(0.5)) == 504
    assert status_for(InvalidInputError("inputs disagree on the batch size")) == 400
    assert (status_for(BatcherStoppedError("stopped")), headers_for(BatcherStoppedError("x"))) == (
        503,
        {"Retry-After": "1"},
    )
    assert status_for(BatchOutputError("output 'y' has batch size 2", "e1")) == 500


def test_failed_run_message_names_only_the_error_id() -> None:
    error = BatchExecutionError("model execution failed: indices element out of data bounds, idx=9", "ab12")
    assert status_for(error) == 500
    assert message_for(error) == "model execution failed (error id ab12); the server log has the details"
    assert headers_for(error) == {}
