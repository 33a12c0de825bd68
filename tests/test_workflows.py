"""The `train` workflow's steps, run as GitHub's bash runs them, in a clean clone after the install: the store
the workflow uploads holds the new version (the default store does not depend on the working directory)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from conftest import REPO


@pytest.mark.slow
def test_the_train_workflow_leaves_the_new_version_in_the_store_it_uploads(tmp_path):
    job = yaml.safe_load((REPO / ".github" / "workflows" / "train.yml").read_text())["jobs"]["train"]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT_", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI="sqlite:///mlflow.db",  # the job's default: no MLFLOW_TRACKING_URI secret
               SAMPLE_SIZE="1500", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    steps = [s for s in job["steps"] if "run" in s and "pip install" not in s["run"]]  # (the install is this test's venv)
    assert steps
    for step in steps:
        assert step.get("shell") == "bash", f"{step.get('name')}: without `shell: bash` a failure before a pipe is hidden"
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, r.stderr[-3000:]
    uploaded = job["steps"][-1]["with"]["path"].split()
    assert "mlflow.db" in uploaded and (clone / "mlflow.db").exists() and not (clone / "nbs" / "mlflow.db").exists()
    versions = MlflowClient(f"sqlite:///{clone}/mlflow.db").search_model_versions("name='SentimentAnalysisModel'")
    assert [str(v.version) for v in versions] == ["1"]
    listed = (clone / "out" / "versions.txt").read_text()
    print("\n" + listed)
    assert listed.splitlines()[1].split()[0] == "1"
    assert (clone / "mlruns").is_dir() and "mlruns/" in uploaded
