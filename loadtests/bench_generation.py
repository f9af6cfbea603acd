"""Generation benchmark: `python -m loadtests.bench_generation` prints markdown tables.

1. KV cache vs recomputing the whole context: greedy decoding of 32, 128 and 256 new tokens from one
   prompt, through the same exported graph, either one token per step on the cache, or re-running the
   whole sequence (past length 0) for every new token, as a model without a cache must.
2. The engine (`service.generation`, sampling, streaming bookkeeping, scheduler, worker thread) against
   the raw ONNX Runtime decode loop (one `session.run` per step, argmax, nothing else), at 1 and 8
   concurrent sequences, on the same session; plus the engine's time to first token.

Every arm is repeated and the best run kept: the machine is shared, and the best run is the one least
disturbed by other work. Thread count is fixed (`--threads`) so figures are comparable across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.generation.engine import GenerationEngine
from service.generation.params import SamplingParams
from service.generation.runner import SessionRunner
from service.generation.text import TextTokenizer
from service.schema.config import MODEL_FILE, GenerationSettings, ModelConfig, list_versions, load_config

PROMPTS = [
    "ROMEO:\nBut soft, what light through yonder window breaks?",
    "HAMLET:\nTo be, or not to be, that is the question:",
    "KING LEAR:\nBlow, winds, and crack your cheeks! rage! blow!",
    "MACBETH:\nTomorrow, and tomorrow, and tomorrow,",
    "PORTIA:\nThe quality of mercy is not strain'd,",
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "PROSPERO:\nOur revels now are ended.",
]


@dataclass(frozen=True)
class Model:
    config: ModelConfig
    settings: GenerationSettings
    version_dir: Path
    session: ort.InferenceSession
    tokenizer: TextTokenizer

    @property
    def past_names(self) -> list[str]:
        s = self.settings
        return [t.format(layer=i) for i in range(s.n_layers) for t in (s.past_key_template, s.past_value_template)]

    def empty_past(self, rows: int) -> dict[str, np.ndarray]:
        shape = (rows, self.settings.n_heads, 0, self.settings.head_dim)
        return {name: np.zeros(shape, np.float32) for name in self.past_names}


def open_model(model_dir: Path, threads: int) -> Model:
    config = load_config(model_dir)
    if config.generation is None:
        raise SystemExit(f"{model_dir}: not a text-generation model")
    version_dir = model_dir / str(list_versions(model_dir)[-1])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(version_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"])
    tokenizer = TextTokenizer.from_file(version_dir / config.generation.tokenizer)
    return Model(config, config.generation, version_dir, session, tokenizer)


def decode_with_cache(model: Model, prompts: list[list[int]], new_tokens: int) -> int:
    """The raw loop: left-padded prefill, then one `session.run` per token for all rows; argmax."""
    s, rows, width = model.settings, len(prompts), max(map(len, prompts))
    ids = np.zeros((rows, width), np.int64)
    positions = np.zeros((rows, width), np.int64)
    mask = np.zeros((rows, width), np.int64)
    for r, prompt in enumerate(prompts):
        ids[r, width - len(prompt) :] = prompt
        positions[r, width - len(prompt) :] = np.arange(len(prompt))
        mask[r, width - len(prompt) :] = 1
    past = model.empty_past(rows)
    following = np.array([[len(p)] for p in prompts], np.int64)
    for _ in range(new_tokens):
        logits, *present = model.session.run(
            None, {s.input_ids: ids, s.position_ids: positions, s.attention_mask: mask, **past}
        )
        past = dict(zip(model.past_names, present, strict=True))
        ids = logits[:, -1].argmax(-1)[:, None].astype(np.int64)  # (rows, 1)
        positions, following = following, following + 1
        mask = np.concatenate([mask, np.ones((rows, 1), np.int64)], axis=1)
    return rows * new_tokens


def decode_by_recomputing(model: Model, prompt: list[int], new_tokens: int) -> int:
    """No cache: every new token re-runs the whole sequence so far (past length 0)."""
    s, sequence = model.settings, list(prompt)
    for _ in range(new_tokens):
        ids = np.array([sequence], np.int64)
        feeds = {
            s.input_ids: ids,
            s.position_ids: np.arange(ids.shape[1], dtype=np.int64)[None],
            s.attention_mask: np.ones_like(ids),
            **model.empty_past(1),
        }
        (logits,) = model.session.run([s.logits], feeds)
        sequence.append(int(logits[0, -1].argmax()))
    return new_tokens


def best_rate(work: Callable[[], int], repeats: int) -> float:
    """Tokens per second of the fastest of `repeats` runs."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        tokens = work()
        rates.append(tokens / (time.perf_counter() - started))
    return max(rates)


async def engine_run(model: Model, prompts: list[str], new_tokens: int) -> tuple[float, list[float]]:
    """(tokens per second, times to first token) for `prompts` generated concurrently by a fresh engine."""
    runner = SessionRunner(model.session)
    engine = GenerationEngine.for_model(model.config, model.version_dir, runner)
    params = [SamplingParams(max_tokens=new_tokens, temperature=0.8, top_k=40, seed=i) for i in range(len(prompts))]
    started = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(p, q) for p, q in zip(prompts, params, strict=True)))
    elapsed = time.perf_counter() - started
    await engine.close()
    runner.close()
    ttft = [r.time_to_first_token_s for r in results if r.time_to_first_token_s is not None]
    return sum(r.completion_tokens for r in results) / elapsed, ttft


def cache_table(model: Model, lengths: list[int], repeats: int) -> list[str]:
    prompt = model.tokenizer.encode(PROMPTS[0])
    rows = [
        "| new tokens | with KV cache (tokens/s) | recomputing the context (tokens/s) | speed-up |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for n in lengths:
        cached = best_rate(lambda n=n: decode_with_cache(model, [prompt], n), repeats)
        recomputed = best_rate(lambda n=n: decode_by_recomputing(model, prompt, n), repeats)
        rows.append(f"| {n} | {cached:,.0f} | {recomputed:,.0f} | {cached / recomputed:.1f}x |")
    return rows


def engine_table(model: Model, concurrencies: list[int], new_tokens: int, repeats: int) -> list[str]:
    rows = [
        "| concurrent sequences | raw ORT decode loop (tokens/s) | engine (tokens/s) | engine / raw "
        "| engine time to first token, median (ms) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in concurrencies:
        texts = [PROMPTS[i % len(PROMPTS)] for i in range(c)]
        ids = [model.tokenizer.encode(t) for t in texts]
        raw = best_rate(lambda ids=ids: decode_with_cache(model, ids, new_tokens), repeats)
        runs = [asyncio.run(engine_run(model, texts, new_tokens)) for _ in range(repeats)]
        served, ttft = max(runs, key=lambda run: run[0])
        ttft_ms = statistics.median(ttft) * 1000
        rows.append(f"| {c} | {raw:,.0f} | {served:,.0f} | {served / raw:.2f} | {ttft_ms:.1f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/tiny-gpt"),
                        help="text-generation model folder (default: models/tiny-gpt)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per arm; the best is kept (default: 3)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 256],
                        help="new tokens for the cache comparison (default: 32 128 256)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8],
                        help="concurrent sequences for engine vs raw (default: 1 8)")  # fmt: skip
    parser.add_argument("--new-tokens", type=int, default=128,
                        help="tokens per sequence for engine vs raw (default: 128)")  # fmt: skip
    args = parser.parse_args(argv)
    model = open_model(args.model_dir, args.threads)
    print(f"model {args.model_dir} v{model.version_dir.name}, ONNX Runtime CPU, "
          f"{args.threads} intra-op thread(s), best of {args.repeats}\n")  # fmt: skip
    print("\n".join(cache_table(model, args.lengths, args.repeats)), end="\n\n")
    print("\n".join(engine_table(model, args.concurrency, args.new_tokens, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
