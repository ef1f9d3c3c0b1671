"""``python -m benchmarks [--smoke] [--only NAME ...] [--json FILE]``: run and print the suite."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from dataclasses import asdict

from benchmarks._harness import emit, machine, run_pooled, table
from potrack.matching import engine

MODULES = [
    "bench_numbering",
    "bench_lifecycle",
    "bench_approval",
    "bench_matching",
    "bench_metrics",
    "bench_storage",
    "bench_audit",
    "bench_receiving",
    "bench_pandas",
]


def _benchmarks(module: str) -> list[object]:
    return list(importlib.import_module(f"benchmarks.{module}").BENCHMARKS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a short run (CI)")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        module, name = args.child
        bench = next(b for b in _benchmarks(module) if b.name == name)  # type: ignore[attr-defined]
        emit(bench.run(args.smoke))  # type: ignore[attr-defined]
        return 0

    results = []
    for module in MODULES:
        for bench in _benchmarks(module):
            name = bench.name  # type: ignore[attr-defined]
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            processes = bench.processes  # type: ignore[attr-defined]
            results.append(run_pooled(module, name, args.smoke, processes))
    mode = "smoke" if args.smoke else "full"
    print(
        f"potrack benchmarks ({mode} run) — Python {platform.python_version()}, {machine()}, "
        f"matching engine: {engine()}\n"
    )
    print(table(results))
    for r in results:
        if r.notes:
            print(f"\n{r.name}: " + ", ".join(f"{k}={v}" for k, v in r.notes.items()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([asdict(r) for r in results], fh, indent=2)
    failed = [r.name for r in results if r.ok is False]
    if failed and not args.smoke:
        print(f"\nbelow target: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
