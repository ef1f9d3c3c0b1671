"""``python -m benchmarks.instructions [--lines N] [--gc off]``: the batch matcher's cost in
machine instructions per invoice line, counted by valgrind's cachegrind.

Timings on a shared machine move by up to 2x with the neighbours' load; instruction counts do
not, so they show a change of 1 % that timings cannot.  The count runs the same script twice
under cachegrind — once building the synthetic stream only, once building it and matching it —
and divides the difference by the invoice lines matched.  ``PYTHONHASHSEED=0`` fixes string
hashing (dict probing otherwise varies the count by about 1 %).  Needs ``valgrind`` on the PATH
(Debian: ``apt-get install valgrind``); about a minute for the default 10,000 lines.

It measures whichever engine is installed (``potrack.matching.engine()``): compare two builds by
running it in each.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys

from potrack.matching import BatchMatcher, TolerancePolicy, engine
from potrack.records import Invoice
from potrack.testing.synth import Synth


def _child(lines: int, match: bool, collector: bool) -> None:
    orders, stream = Synth(seed=11).matching_stream(lines)
    documents = list(stream)  # generated before matching: the same work in both runs
    gc.collect()
    gc.freeze()
    if not collector:
        gc.disable()
    if match:
        matcher = BatchMatcher(orders, TolerancePolicy.lenient())
        for document in documents:
            matcher.feed(document)
    billed = sum(len(d.lines) for d in documents if type(d) is Invoice)
    print(f"invoice lines {billed}")


def _count(lines: int, match: bool, collector: bool) -> tuple[int, int]:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        str(lines),
        "1" if match else "0",
        "1" if collector else "0",
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    refs = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    billed = re.search(r"invoice lines (\d+)", done.stdout)
    if refs is None or billed is None:
        raise RuntimeError(f"unexpected valgrind output:\n{done.stderr[-2000:]}")
    return int(refs.group(1).replace(",", "")), int(billed.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("--lines", type=int, default=10_000, help="invoice lines in the stream")
    parser.add_argument("--gc", choices=("on", "off"), default="on", help="the garbage collector")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(int(args.child[0]), args.child[1] == "1", args.child[2] == "1")
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    collector = args.gc == "on"
    base, billed = _count(args.lines, False, collector)
    total, _ = _count(args.lines, True, collector)
    print(
        f"matching engine: {engine()}; {billed:,} invoice lines, collector {args.gc}: "
        f"{(total - base) / billed:,.0f} instructions per invoice line"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
