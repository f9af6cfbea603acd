"""loadtests.bench_gan in its short mode: it runs end to end and writes (and rewrites) only its section."""

from __future__ import annotations

from pathlib import Path

from gan_testkit import COMMITTED

from loadtests import report
from loadtests.bench_gan import MARK_END, MARK_START, main


def test_bench_gan_short_writes_its_section_and_keeps_the_rest(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text("# Benchmarks\n\nearlier text\n", encoding="utf-8")
    assert main(["--short", "--repository", str(COMMITTED), "--output", str(output)]) == 0
    assert main(["--short", "--repository", str(COMMITTED), "--output", str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nearlier text\n")
    assert text.count(MARK_START) == 1 and text.count(MARK_END) == 1
    rows = [line for line in text.splitlines() if line.startswith("| 16 | 16 |")]
    assert len(rows) == 1 and float(rows[0].split("|")[3].replace(",", "")) > 0


def test_benchmark_report_rewrite_keeps_the_gan_section(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text(f"# old report\n\n{MARK_START}\n## digits-gan\nfigures\n{MARK_END}\n", encoding="utf-8")
    report.write(output, "# new report\n")
    text = output.read_text(encoding="utf-8")
    assert text.startswith("# new report\n") and "old report" not in text
    assert f"{MARK_START}\n## digits-gan\nfigures\n{MARK_END}" in text
