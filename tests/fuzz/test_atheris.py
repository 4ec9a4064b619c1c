"""atheris (coverage-guided, libFuzzer) over the Processor's bytes, in a child process.

libFuzzer ends its process when it is done, so it runs as a script (atheris_processor.py) on a
copy of the seed corpus, for a fixed number of runs with a per-input timeout of 1 s.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import REGRESSIONS, SEEDS

RUNS = 4000
ROOT = Path(__file__).resolve().parents[2]

if not (platform.system() == "Linux" and platform.machine() == "x86_64"):
    pytest.skip("atheris ships wheels for Linux x86_64 only (the dev extra installs it there)",
                allow_module_level=True)


def test_atheris_finds_no_input_that_breaks_the_processor(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed-{i}").write_bytes(seed)
    for path in REGRESSIONS.glob("*.bin"):
        if path.stat().st_size <= 64 * 1024:
            shutil.copy(path, corpus / path.name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "services"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("atheris_processor.py")), str(corpus),
         f"-runs={RUNS}", "-timeout=1", "-max_len=8192", "-rss_limit_mb=2048", "-seed=8",
         f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-4000:]
    done = re.search(r"Done (\d+) runs", run.stderr)
    assert done and int(done.group(1)) >= RUNS, run.stderr[-2000:]
