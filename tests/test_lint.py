"""Lint what is not a notebook's prose: the exported library, the tests and the benchmarks."""
import subprocess
import sys

from conftest import REPO


def test_ruff_is_clean():
    paths = [p for p in ("sentiment_mlops", "tests", "benchmarks") if (REPO / p).exists()]
    r = subprocess.run([sys.executable, "-m", "ruff", "check", *paths], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
