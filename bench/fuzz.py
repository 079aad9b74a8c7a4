"""Long schema fuzzing run: the CI test's checks (tests/integration/hostile/fuzzing.py) with
a bigger budget and, by default, a fresh random seed each run.

Every operation of the app's own OpenAPI document gets positive and negative cases, against
the app in-process on SQLite with a valid key. Prints operations, examples, status counts
and every failure (5xx, 4xx outside the error envelope, 2xx off its schema); exits 1 on any.
Run: .venv/bin/python bench/fuzz.py [--max-examples 300] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.hostile.fuzzing import fuzz_target, run_fuzz


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=300, help="per operation and mode")
    parser.add_argument(
        "--seed", type=int, default=None, help="derandomize (same cases as CI); default: random"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fuzz_target(Path(tmp)) as target:
        report = run_fuzz(target, max_examples=args.max_examples, seed=args.seed)
    print(f"max_examples={args.max_examples} per operation and mode, seed={args.seed}")
    print(report.summary())
    for label in report.operations:
        print(f"  {label}")
    for failure in report.failures:
        print(f"FAIL {failure}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
