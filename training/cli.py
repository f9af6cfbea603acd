"""nnserve-train: train, export and evaluate the bundled models (presets of `fit`) and models on your own data.

Only the standard library is imported at start-up; torch and each preset are imported when a
subcommand needs them, so `--help` is instant and works without the `train` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from training.family import TrainOptions, TrainResult
from training.fit.cli import add_fit_parser, options_from, run_fit
from training.fit.tasks import get_task, task_names
from training.registry import family_names, get_family, get_preset

DEFAULT_REPOSITORY = Path("models")
DEFAULT_SEED = 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="maximum epochs (default: the preset's own; early stopping may end sooner)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed for weight init, shuffling, dropout, augmentation (default: {DEFAULT_SEED}); "
        "the data split has its own fixed seed",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="train on one batch, then export, check parity and write the version (default: off)",
    )
    parser.add_argument(
        "--version",
        type=_positive_int,
        default=None,
        help="version number to write; an existing one is replaced (default: highest present + 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars (default: shown)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnserve-train",
        description="Train models on your own data (`fit`) or the bundled models on their bundled data "
        "(`train`: each is a preset of `fit`, the same task code at fixed settings), export them to ONNX "
        "with a parity check against torch, and publish versions atomically into a model repository; "
        "evaluate exported versions through ONNX Runtime on the held-out test split.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repository",
        type=Path,
        default=DEFAULT_REPOSITORY,
        help=f"model repository folder (default: {DEFAULT_REPOSITORY})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list the bundled models (with the fit task each is a preset of) and the fit tasks")

    train = sub.add_parser(
        "train",
        parents=[common],
        help="train one bundled model and write a new version",
        description="Train one bundled model: its fit task on the bundled data at the preset's fixed "
        "settings (training/presets/NAME.py). Exports model.onnx, checks parity, evaluates it and a "
        "classical baseline on the fixed test split, and publishes config.yaml, card.md, metrics.json "
        "and curves.png atomically.",
    )
    train.add_argument("name", choices=family_names(), metavar="NAME", help=f"one of: {', '.join(family_names())}")
    _add_train_options(train)

    evaluate = sub.add_parser(
        "evaluate",
        parents=[common],
        help="evaluate an exported version on the test split",
        description="Run <repository>/NAME/<version>/model.onnx through ONNX Runtime "
        "on the held-out test split and print its metrics.",
    )
    evaluate.add_argument("name", choices=family_names(), metavar="NAME", help=f"one of: {', '.join(family_names())}")
    evaluate.add_argument(
        "--version",
        type=_positive_int,
        default=None,
        help="version to evaluate (default: the highest present)",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (default: a readable table)")

    every = sub.add_parser(
        "all",
        parents=[common],
        help="train every bundled model in turn (what `make models` runs)",
        description=f"Train every bundled model in turn: {', '.join(family_names())}.",
    )
    _add_train_options(every)
    add_fit_parser(sub, common)
    return parser


def _options(args: argparse.Namespace) -> TrainOptions:
    return TrainOptions(
        repository=args.repository,
        seed=args.seed,
        epochs=args.epochs,
        dry_run=args.dry_run,
        version=args.version,
        progress=not args.no_progress,
    )


def _print_table(metrics: dict[str, Any]) -> None:
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else json.dumps(value) if isinstance(value, dict) else value
        print(f"{key:>22}  {shown}")


def _report(result: TrainResult) -> None:
    print(f"{result.name} v{result.version} -> {result.version_dir} ({result.seconds:.1f} s)", file=sys.stderr)
    _print_table(result.metrics)


def _list() -> int:
    from training.presets import fit_flags

    for name in family_names():
        try:
            family = get_family(name)
            summary = f"{family.summary}\n{'':<18} = fit --task {family.task} {fit_flags(get_preset(name))}"
        except ImportError as exc:
            summary = f"(unavailable: {exc})"
        print(f"{name:<18} {summary}")
    print("\nnnserve-train fit NAME --task TASK --data PATH, on your own data:")
    for task in task_names():
        print(f"{task:<24} {get_task(task).SUMMARY}")
    return 0


def _train_all(options: TrainOptions) -> int:
    started = time.perf_counter()
    results = []
    for name in family_names():
        result = get_family(name).train(options)
        _report(result)
        results.append(result)
    print(f"\n{'model':<18} {'version':>7} {'seconds':>8}  metrics")
    for r in results:
        headline = {k: round(v, 4) for k, v in r.metrics.items() if isinstance(v, float)}
        print(f"{r.name:<18} {r.version:>7} {r.seconds:>8.1f}  {headline}")
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "fit":
        return run_fit(options_from(args, sys.argv[1:] if argv is None else argv))
    if args.command == "list":
        return _list()
    if args.command == "all":
        return _train_all(_options(args))
    family = get_family(args.name)
    if args.command == "train":
        _report(family.train(_options(args)))
        return 0
    try:
        metrics = family.evaluate(args.repository, args.version)
    except FileNotFoundError as exc:
        print(f"nnserve-train: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics))
    else:
        _print_table(metrics)
    return 0
