"""The bundled corpora, the fixed split and the synthetic anomalies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data.anomalies import ANOMALY_KINDS, make_anomalies
from training.data.digits import load_digits_split
from training.data.spam import load_spam_split, read_messages
from training.data.splits import TEST_FRACTION, VAL_FRACTION, stratified_split


def test_split_covers_every_example_once() -> None:
    labels = np.repeat(np.arange(4), 50)
    split = stratified_split(labels)
    together = np.concatenate([split.train, split.val, split.test])
    assert sorted(together.tolist()) == list(range(len(labels)))
    assert len(split.test) == pytest.approx(TEST_FRACTION * len(labels), abs=1)
    assert len(split.val) == pytest.approx(VAL_FRACTION * len(labels), abs=1)


def test_split_is_identical_on_every_call() -> None:
    labels = np.random.default_rng(1).integers(0, 2, 300)
    first, second = stratified_split(labels), stratified_split(labels)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(first, part), getattr(second, part))


def test_spam_split_keeps_the_spam_share_in_every_part() -> None:
    data = load_spam_split()
    shares = [part.y.mean() for part in (data.train, data.val, data.test)]
    assert max(shares) - min(shares) < 0.01
    assert 0.10 < shares[0] < 0.16


def test_spam_split_shares_no_message_between_parts() -> None:
    data = load_spam_split()
    train, val, test = (set(p.texts) for p in (data.train, data.val, data.test))
    assert not (train & test or train & val or val & test)
    assert len(data.train) + len(data.val) + len(data.test) == len(train | val | test)


def test_spam_reader_rejects_a_line_without_label(tmp_path: Path) -> None:
    path = tmp_path / "spam.csv"
    path.write_text("ham\thello\nno label here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"spam.csv:2"):
        read_messages(path)


def test_digits_split_holds_raw_pixel_values() -> None:
    data = load_digits_split()
    assert data.train.x.shape[1:] == (1, 8, 8)
    assert data.train.x.dtype == np.float32
    assert data.train.x.min() == 0 and data.train.x.max() == 16
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert set(data.test.y.tolist()) == set(range(10))


def test_anomalies_are_reproducible_in_range_and_of_every_kind() -> None:
    digits = load_digits_split().test.x
    images, kinds = make_anomalies(digits, per_kind=7)
    again, _ = make_anomalies(digits, per_kind=7)
    assert np.array_equal(images, again)
    assert images.shape == (7 * len(ANOMALY_KINDS), 1, 8, 8)
    assert images.min() >= 0 and images.max() <= 16
    assert {k: kinds.count(k) for k in ANOMALY_KINDS} == dict.fromkeys(ANOMALY_KINDS, 7)
    assert not any(np.array_equal(images[i], d) for i in range(len(images)) for d in digits)
