"""Choosing the next token from one row of logits: greedy, temperature, top-k, top-p.

Each sequence brings its own `numpy.random.Generator`, so its draws depend only on its own seed and its
own logits, never on which other sequences share the batch; the engine keeps each row's logits
bit-identical to decoding it alone, so a seed fixes the text.
"""

from __future__ import annotations

import numpy as np

from service.generation.params import SamplingParams


def choose_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """The next token id for one sequence; `logits` has shape (vocab,). Greedy draws no random number."""
    if params.temperature == 0:
        return int(np.argmax(logits))
    with np.errstate(over="ignore"):
        scaled = logits.astype(np.float64) / params.temperature  # (V,)
    if not np.isfinite(scaled.max()):
        # The temperature is so small that the likeliest logit overflowed (5e-324 makes every positive
        # logit infinite, and exp(inf - inf) is NaN): that is sampling's limit as temperature -> 0, greedy.
        return int(np.argmax(logits))
    ids = np.arange(scaled.size)
    if 0 < params.top_k < scaled.size:
        ids = np.sort(np.argpartition(scaled, -params.top_k)[-params.top_k :])  # the k likeliest, in id order
        scaled = scaled[ids]  # (k,): the rest of the work is on k values, not the vocabulary
    probs = np.exp(scaled - scaled.max())  # unnormalised
    if params.top_p < 1:
        order = np.argsort(-probs, kind="stable")  # likeliest first; ties in id order (deterministic)
        ids, probs = ids[order], probs[order]
    cumulative = np.cumsum(probs)
    if params.top_p < 1:
        # The smallest prefix whose mass reaches top_p of the total; the likeliest token always stays.
        keep = int(np.searchsorted(cumulative, params.top_p * cumulative[-1], side="left")) + 1
        cumulative = cumulative[:keep]
    draw = rng.random() * cumulative[-1]
    index = min(int(np.searchsorted(cumulative, draw, side="right")), cumulative.size - 1)
    return int(ids[index])
