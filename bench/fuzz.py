"""Long schema fuzzing run, in two passes over the app in-process on SQLite with a valid key:

1. the CI test's checks (tests/integration/hostile/fuzzing.py `run_fuzz`) with a bigger
   budget: positive and negative cases for every operation, SSE included;
2. every schemathesis check (`--checks all`) over every phase (`run_all_checks`): status
   codes and headers as documented, `Allow` on a 405, positive and negative data, stateful
   links, undeclared methods.

By default each run takes a fresh random seed. Prints operations, examples, status counts
and every failure; exits 1 on any.
Run: .venv/bin/python bench/fuzz.py [--max-examples 300] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.hostile.fuzzing import FuzzReport, fuzz_target, run_all_checks, run_fuzz


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=300, help="per operation and mode")
    parser.add_argument(
        "--seed", type=int, default=None, help="derandomize (same cases as CI); default: random"
    )
    args = parser.parse_args()
    print(f"max_examples={args.max_examples} per operation and mode, seed={args.seed}")
    failures = 0
    for name, run in (("envelope", run_fuzz), ("all checks", run_all_checks)):
        with tempfile.TemporaryDirectory() as tmp, fuzz_target(Path(tmp)) as target:
            report = run(target, max_examples=args.max_examples, seed=args.seed)
        _print(name, report)
        failures += len(report.failures)
    return 1 if failures else 0


def _print(name: str, report: FuzzReport) -> None:
    print(f"[{name}] {report.summary()}")
    for label in report.operations:
        print(f"  {label}")
    for failure in report.failures:
        print(f"FAIL {failure}")


if __name__ == "__main__":
    raise SystemExit(main())
