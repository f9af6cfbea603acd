"""Streaming detokenization and stop strings."""

from __future__ import annotations

from service.generation.text import REPLACEMENT, IncrementalDecoder, StopMatcher, TextTokenizer

UNICODE_TEXT = "ROMEO:\nBut soft — what light ✓ through ünïcode 😀 window breaks?\n"


def test_incremental_decoder_deltas_join_to_the_text(tokenizer: TextTokenizer) -> None:
    decoder = IncrementalDecoder(tokenizer)
    deltas = [decoder.push(token) for token in tokenizer.encode(UNICODE_TEXT)] + [decoder.flush()]
    assert "".join(deltas) == UNICODE_TEXT
    assert not any(REPLACEMENT in d for d in deltas), "a delta split a multi-byte character"
    assert sum(1 for d in deltas if d) > 10, "text should stream token by token, not at the end"


def test_incremental_decoder_flush_releases_an_incomplete_character(tokenizer: TextTokenizer) -> None:
    ids = tokenizer.encode("😀")
    assert len(ids) > 1, "the emoji should span several byte-level tokens"
    decoder = IncrementalDecoder(tokenizer)
    assert decoder.push(ids[0]) == ""
    assert decoder.flush() == tokenizer.decode(ids[:1])


def test_stop_matcher_finds_stop_split_across_deltas() -> None:
    matcher = StopMatcher(("\n\n", "good night"))
    released = [matcher.push("Parting is such sweet sorrow, that I shall say go"), matcher.push("od ni")]
    assert released == [("Parting is such sweet sorrow, that I shall say ", False), ("", False)]
    assert matcher.push("ght till it be morrow.") == ("", True)


def test_stop_matcher_releases_held_text_when_it_diverges() -> None:
    matcher = StopMatcher(("good night",))
    assert matcher.push("so goo") == ("so ", False)
    assert matcher.push("se") == ("goose", False)
    assert matcher.push(" goo") == (" ", False)
    assert matcher.flush() == "goo"


def test_stop_matcher_cuts_at_earliest_of_several_stops() -> None:
    assert StopMatcher(("C", "B")).push("aBcC") == ("a", True)


def test_stop_matcher_without_stops_passes_text_through() -> None:
    assert StopMatcher(()).push("anything") == ("anything", False)
