"""The whole flow against an MLflow tracking server on PostgreSQL with proxied artifacts.

`.ci/run` starts the services (`scripts/services.sh`) and exports SENTIMENT_TEST_MLFLOW_URI; without it
(a laptop without the services) this module is skipped and says why."""
import os
import subprocess

import pytest
from mlflow import MlflowClient

from conftest import REPO, run_py
from servers import api_server

URI = os.environ.get("SENTIMENT_TEST_MLFLOW_URI")
pytestmark = pytest.mark.skipif(not URI, reason="no PostgreSQL-backed MLflow server: run `bash .ci/run` or scripts/services.sh")


def test_train_gate_promote_serve_predict_on_postgres(tmp_path):
    env = {"MLFLOW_TRACKING_URI": URI, "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "cache"), "SENTIMENT_MIN_MACRO_F1": "0.5"}
    out = tmp_path / "train.ipynb"
    r = run_py(["-m", "papermill", REPO / "nbs" / "02_train.ipynb", out, "-p", "sample_size", "3000",
                "-p", "output_notebook", out, "--cwd", REPO / "nbs"], tmp_path, env)
    assert r.returncode == 0, r.stderr[-3000:]
    client = MlflowClient(URI)
    versions = client.search_model_versions("name='SentimentAnalysisModel'")
    version = str(max(int(v.version) for v in versions))
    run = client.get_run(client.get_model_version("SentimentAnalysisModel", version).run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    r = run_py(["-m", "sentiment_mlops.registry", "promote", "--to", "production", "--version", version], tmp_path, env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert str(client.get_model_version_by_alias("SentimentAnalysisModel", "production").version) == version
    with api_server(tmp_path, {**env, "SENTIMENT_LOG_DIR": tmp_path / "logs", "SENTIMENT_RELOAD_CHECK_SECONDS": "1"}, wait="/ready") as api:
        p = api.post("/predict", json={"text": "thanks for the lovely flight"}).json()
        assert p["model"]["version"] == version and p["label"] in ("negative", "neutral", "positive")
        assert api.get("/model").json()["source"] == "registry"
        runs_before = len(client.search_runs([run.info.experiment_id]))
        versions_before = sorted(int(v.version) for v in client.search_model_versions("name='SentimentAnalysisModel'"))
        services = os.environ["SENTIMENT_TEST_SERVICES_DIR"]
        subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "stop-mlflow", services], check=True)
        try:  # the tracking server is down: the API keeps answering from the model it holds
            for t in ["great crew", "lost my bag", "boarding at 5"]:
                assert api.post("/predict", json={"text": t}).status_code == 200
        finally:
            subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "start-mlflow", services], check=True)
        # restarted on the same PostgreSQL database: no run, no version lost
        assert len(client.search_runs([run.info.experiment_id])) == runs_before
        assert sorted(int(v.version) for v in client.search_model_versions("name='SentimentAnalysisModel'")) == versions_before
        assert str(client.get_model_version_by_alias("SentimentAnalysisModel", "production").version) == version
    print(f"\nPostgreSQL-backed MLflow at {URI}: trained with papermill, gated and promoted version {version}, served it")


def test_a_hundred_alias_moves_on_postgres_are_recorded_and_listed(tmp_path):
    """The alias history outlives PostgreSQL's 5,000-character tag values — 100+ moves with long reasons, every
    one recorded and listed by `registry list` (the old single JSON tag failed after ~30)."""
    from sentiment_mlops.config import Settings
    from sentiment_mlops.training.registry import history, promote, rollback
    from sentiment_mlops.training.train import TrainParams, train
    name = f"HistoryTest{os.getpid()}"
    s = Settings(tracking_uri=URI, model_name=name, model_cache_dir=tmp_path / "cache", min_macro_f1=0.5, actor="ci-history")
    v1, v2 = train(TrainParams(sample_size=1500), s).version, train(TrainParams(sample_size=1500, seed=7), s).version
    promote(s, version=v1, force=True, reason="first")
    promote(s, version=v2, force=True, reason="second")
    reason = "a long reason, as release notes are: " + "x" * 400
    for i in range(100): rollback(s, reason=f"{reason} #{i}")
    moves = history(s)
    assert len(moves) == 102 and [m["action"] for m in moves[2:]] == ["rolled_back"] * 100
    assert MlflowClient(URI).get_model_version_by_alias(name, "production").version == v2  # an even number of flips back
    r = run_py(["-m", "sentiment_mlops.registry", "list"], tmp_path, {"MLFLOW_TRACKING_URI": URI, "SENTIMENT_MODEL_NAME": name})
    assert r.returncode == 0, r.stderr[-2000:]
    listed = [line for line in r.stdout.splitlines() if "rolled_back" in line or "promoted_to" in line]
    print(f"\n{len(moves)} moves of production on PostgreSQL; registry list shows {len(listed)} of them")
    assert "production history (102 moves" in r.stdout and len(listed) == 102 and all(f"#{i}" in r.stdout for i in range(100))
