"""Coverage-guided byte fuzzing of the Processor with atheris (libFuzzer), run as a script.

    python tests/fuzz/atheris_processor.py CORPUS_DIR -runs=5000 -timeout=1 ...

`test_atheris.py` runs it in CI on a copy of the seed corpus (the contract examples and the
regression examples). Each input goes through `harness.check_input`, the invariants every fuzz
input must hold; an input that breaks one is written to tests/fuzz/regressions/ (found-*.bin)
before atheris reports it and exits non-zero. `-timeout=1` is the per-input bound: an input
slower than 1 s is a failure too.
"""
from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: tests.*

with atheris.instrument_imports(include=["rxgate"]):
    import rxgate.check  # noqa: F401  (every module the Processor reaches, instrumented)
    import rxgate.processor  # noqa: F401

from tests.fuzz.harness import check_input, fresh_processor, keep_regression  # noqa: E402


def one_input(data: bytes) -> None:
    try:
        check_input(fresh_processor(), data, save=False)
    except BaseException:
        path = keep_regression(data)
        print(f"atheris: a failing input is kept as {path}", file=sys.stderr)
        raise


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
