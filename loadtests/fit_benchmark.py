"""How long `nnserve-train fit` takes, and how much memory it holds, on data sets of a realistic size.

Writes synthetic-from-real data sets (training/fit/sample_data.py) and runs each `fit` as its own
process, timing it and reading its own peak RSS from the kernel (wait4 of that child):

- 10,000 28x28 grey images (the digits, shifted and noised beyond 1,797), image-classification;
- 10,000 short texts (the SMS corpus plus word-dropped/swapped variants), text-classification;
- 50,000 tabular rows (breast cancer resampled with 2% noise, missing cells, a string column);
- a folder of 50,000 28x28 images, image-classification --dry-run: the peak RSS of loading and decoding.

    python -m loadtests.fit_benchmark --out /tmp/fit-bench            # the figures in docs/training.md
    python -m loadtests.fit_benchmark --out /tmp/fit-bench --quick    # 1/20 of the sizes, dry runs

Wall times need a quiet machine; CPU seconds (user + system of the child) are close to the quiet wall
time, since torch trains on one thread. Prints one JSON object per run and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from training.fit import sample_data

RUNS = ("images", "texts", "rows", "images-50k")


def _run(name: str, args: list[str], repository: Path) -> dict[str, Any]:
    """One fit in a child process: wall time, peak RSS (MiB), and the test metrics it published."""
    command = [
        sys.executable,
        "-m",
        "training",
        "fit",
        name,
        "--repository",
        str(repository),
        "--no-progress",
        "--version",
        "1",
        *args,
    ]
    log = repository.parent / f"{name}.log"
    repository.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{log.read_text()[-3000:]}")
    peak = usage.ru_maxrss
    metrics = json.loads((repository / name / "1" / "metrics.json").read_text())
    return {
        "run": name,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "epochs_run": metrics["training"]["epochs_run"],
        "train_seconds": metrics["training"]["seconds"],
        "data": {k: v for k, v in metrics["data"].items() if isinstance(v, int | str)},
        "test": {k: v for k, v in metrics["test"].items() if k != "split"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the data sets and the repository")
    parser.add_argument("--quick", action="store_true", help="1/20 of every size and --dry-run (proves the script)")
    parser.add_argument("--only", choices=RUNS, action="append", help="run only these (repeatable; default: all)")
    args = parser.parse_args(argv)
    scale = 20 if args.quick else 1
    extra = ["--dry-run"] if args.quick else []
    out, repository = args.out, args.out / "repository"
    data = out / "data"
    only = set(args.only or RUNS)
    runs = []
    if "images" in only:
        images = data / "images-10k"
        if not images.exists():
            sample_data.write_digit_folders(images, size=28, count=10_000 // scale)
        runs.append(_run("bench-images", ["--task", "image-classification", "--data", str(images), *extra], repository))
        print(json.dumps(runs[-1]), flush=True)
    if "texts" in only:
        texts = data / "texts-10k.csv"
        if not texts.exists():
            sample_data.write_sms(texts, count=10_000 // scale)
        runs.append(_run("bench-texts", ["--task", "text-classification", "--data", str(texts), *extra], repository))
        print(json.dumps(runs[-1]), flush=True)
    if "rows" in only:
        rows = data / "rows-50k.csv"
        if not rows.exists():
            sample_data.write_tabular(rows, "breast_cancer", rows=50_000 // scale)
        runs.append(_run("bench-rows", ["--task", "tabular-classification", "--data", str(rows), *extra], repository))
        print(json.dumps(runs[-1]), flush=True)
    if "images-50k" in only:
        folder = data / "images-50k"
        if not folder.exists():
            sample_data.write_digit_folders(folder, size=28, count=50_000 // scale)
        args_50k = ["--task", "image-classification", "--data", str(folder), "--dry-run"]
        runs.append(_run("bench-images-50k", args_50k, repository))
        print(json.dumps(runs[-1]), flush=True)
    print(f"\n{'run':<18} {'wall s':>8} {'CPU s':>8} {'epochs':>6} {'peak RSS MiB':>12}  test")
    for r in runs:
        headline = {k: round(v, 4) for k, v in r["test"].items() if isinstance(v, float)}
        print(
            f"{r['run']:<18} {r['seconds']:>8} {r['cpu_seconds']:>8} {r['epochs_run']:>6} {r['peak_rss_mib']:>12}"
            f"  {headline}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
