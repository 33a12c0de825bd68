"""A short soak (benchmarks/soak.py for 2 minutes): two workers at half their capacity, the alias moved and a reload forced,
the log rotating — no 5xx, every answered prediction in the log exactly once, descriptors and threads flat, the backlog drained."""
import pytest

from conftest import REPO, run_py


@pytest.mark.slow
def test_a_two_minute_soak(tmp_path):
    r = run_py([REPO / "benchmarks" / "soak.py", "--minutes", "2", "--sample-size", "2000", "--no-record"], tmp_path, timeout=900)
    print(r.stdout[-2500:])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
