"""Every example runs (in a subprocess, with a time limit), so none can rot."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Whole scripts in fresh processes, about 30 s together: CI's slow job runs them.
pytestmark = pytest.mark.slow

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    pytest.importorskip("sklearn")
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    if script.stem == "quickstart":
        accuracy = float(re.search(r"Test accuracy on \d+ held-out digits: ([0-9.]+)", result.stdout).group(1))
        assert accuracy >= 0.95
