"""Faults and secrets — a corrupt promoted version, a prediction log that cannot be written, no secrets in any log."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

from servers import api_env, api_server, metric, wait_for, wait_until
from sentiment_mlops.config import PRODUCTION, Settings
from sentiment_mlops.training.train import TrainParams, train




def test_alias_on_a_corrupt_version_keeps_the_old_model_and_says_so(tmp_path):
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", min_macro_f1=0.5)
    v1 = train(TrainParams(sample_size=1500), s).version
    v2 = train(TrainParams(sample_size=1500, seed=3), s).version
    client = MlflowClient(s.tracking_uri)
    client.set_registered_model_alias(s.model_name, PRODUCTION, v1)
    # corrupt version 2's stored model: garbage where its skops file was
    where = Path(client.get_model_version_download_uri(s.model_name, v2).removeprefix("file://"))
    (where / "artifacts" / "scorer" / "scorer.npz").write_bytes(b"not a model, and certainly not a pickle")
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_RELOAD_CHECK_SECONDS="1"), wait="/ready") as api:
        assert api.get("/model").json()["version"] == v1
        client.set_registered_model_alias(s.model_name, PRODUCTION, v2)
        h = wait_until(lambda: (r := api.get("/health").json())["status"] == "degraded" and r, 60)
        print("\nhealth with a corrupt promoted version:", h["status"], h["recent_errors"][-1]["error"][:200])
        assert any("model load" in e["where"] and "cannot be loaded" in e["error"] for e in h["recent_errors"])
        assert any(f"points at version {v2}" in p for p in h["problems"])
        assert api.get("/model").json()["version"] == v1  # the old model keeps serving
        assert api.post("/predict", json={"text": "great crew"}).json()["model"]["version"] == v1
        assert metric(api.get("/metrics").text, "sentiment_model_reloads_total") >= 1
        assert not (tmp_path / "cache" / s.model_name / "versions" / v2).exists()  # nothing broken entered the cache


def test_a_model_that_cannot_warm_up_is_not_served_and_health_says_why(small_model, tmp_path):
    "A runtime missing one of the model's dependencies (here VADER's lexicon, shadowed by a package that fails to import)."
    s, _ = small_model
    shadow = tmp_path / "shadow" / "vaderSentiment"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('vaderSentiment is not installed in this runtime')")
    with api_server(tmp_path, api_env(s, tmp_path, PYTHONPATH=shadow.parent), wait="/health") as api:
        h = wait_until(lambda: (r := api.get("/health").json())["recent_errors"] and r, 60)
        assert h["recent_errors"][-1]["where"] == "model load (start-up)" and "vaderSentiment" in h["recent_errors"][-1]["error"]
        assert api.get("/ready").status_code == 503 and h["model"] is None


def test_prediction_log_full_or_unwritable_predictions_still_answered(small_model, tmp_path):
    s, _ = small_model
    full = tmp_path / "full"; full.mkdir()
    os.symlink("/dev/full", full / "predictions.jsonl")  # every write: ENOSPC, as on a full disk
    blocked = tmp_path / "a-file"; blocked.write_text("")  # a log directory that cannot be created
    for name, log_dir in (("disk full", full), ("unwritable", blocked / "logs")):
        with api_server(tmp_path / name.replace(" ", "-"), api_env(s, tmp_path / name.replace(" ", "-"), SENTIMENT_LOG_DIR=log_dir),
                        wait="/ready") as api:
            for _ in range(5): assert api.post("/predict", json={"text": "the crew was lovely"}).status_code == 200
            h = wait_until(lambda: (r := api.get("/health").json())["prediction_log"]["failed"] and r, 30)
            m = api.get("/metrics").text
            print(f"\n{name}: health {h['status']}: {h['problems']}; log failures counted {metric(m, 'sentiment_prediction_log_failures_total'):.0f}")
            assert h["status"] == "degraded" and any("prediction log" in p for p in h["problems"])
            assert metric(m, "sentiment_prediction_log_failures_total") >= 1


def test_no_secrets_in_server_output_or_prediction_log(small_model, tmp_path):
    s, _ = small_model
    token, key = "adm1n-" + "s3cret-token-4f9a", "h4sh-" + "key-77c1e2-b80f"
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_ADMIN_TOKEN=token, SENTIMENT_LOG_HASH_KEY=key), wait="/ready") as api:
        assert api.post("/predict", json={"text": "a private message about my flight"}).status_code == 200
        assert api.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert api.post("/admin/reload", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        pages = "".join(api.get(p).text for p in ("/health", "/model", "/metrics", "/openapi.json", "/monitoring/stats"))
        wait_until(lambda: (tmp_path / "logs" / "predictions.jsonl").exists())
    out = api.output() + (tmp_path / "logs" / "predictions.jsonl").read_text() + pages
    assert token not in out and key not in out
    assert "a private message" not in (tmp_path / "logs" / "predictions.jsonl").read_text()  # privacy=hash by default
    shutil.rmtree(tmp_path / "logs")


CACHED_START = """
import sys
from sentiment_mlops.config import Settings
from sentiment_mlops.store import load_from_cache
m = load_from_cache(Settings())
print(type(m.predictor).__name__ if m else None, m and m.version, m and m.predict_proba(["what a lovely crew"]).shape,
      sorted({n.split(".")[0] for n in sys.modules} & {"sklearn", "skops", "mlflow"}))
"""


def test_cached_start_loads_the_scorer_without_sklearn_and_a_corrupt_one_is_downloaded_again(small_model, tmp_path):
    """A version in the cache is served from its scorer without importing scikit-learn, skops or MLflow; a corrupt
    scorer file is quarantined (never served) and the version is downloaded again once the registry answers."""
    from conftest import REPO, run_py
    from sentiment_mlops.store import SCORER_PATH, load_model
    s, result = small_model
    s = Settings(tracking_uri=s.tracking_uri, model_cache_dir=tmp_path / "cache")
    version_dir = load_model(s).path  # downloads the version into the cache
    assert (version_dir / SCORER_PATH / "scorer.npz").exists() and (version_dir / "model" / "MLmodel").exists()
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "cache")}
    out = run_py(["-c", CACHED_START], REPO, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["FastScorer", result.version, "(1,", "3)", "[]"], out.stdout

    (version_dir / SCORER_PATH / "scorer.npz").write_bytes(b"PK\x03\x04 not really a zip")
    out = run_py(["-c", CACHED_START], REPO, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "None" and "unreadable" in out.stderr  # quarantined, not served
    assert not version_dir.exists() and len(list((version_dir.parent.parent / "quarantine").iterdir())) == 1
    again = load_model(s)  # the registry answers: a good copy comes back
    assert again.version == result.version and again.source == "registry" and (version_dir / SCORER_PATH / "scorer.npz").exists()


def test_a_cache_shared_by_two_registries_serves_each_its_own_version(small_model, tmp_path):
    "Version 1 of another store already in the cache directory is replaced by this store's version 1, not served."
    from sentiment_mlops.store import load_model
    a, result_a = small_model
    shared = tmp_path / "shared-cache"
    first = load_model(Settings(tracking_uri=a.tracking_uri, model_cache_dir=shared))
    assert first.run_id == result_a.run_id
    b = Settings(tracking_uri=f"sqlite:///{tmp_path}/other.db", model_cache_dir=shared, min_macro_f1=0.5)
    result_b = train(TrainParams(sample_size=1500, seed=7), b)
    MlflowClient(b.tracking_uri).set_registered_model_alias(b.model_name, PRODUCTION, result_b.version)
    assert result_b.version == result_a.version == "1" and result_b.run_id != result_a.run_id
    second = load_model(b)
    assert second.run_id == result_b.run_id and second.path == first.path
    assert json.loads((second.path / "version.json").read_text())["run_id"] == result_b.run_id
    assert not list(second.path.parent.glob(".stale-*")) and not list(second.path.parent.glob(".download-*"))
    assert second.predict_proba(["great crew"]).shape == (1, 3)


CONCURRENT_LOAD = """
import json
from sentiment_mlops.config import Settings
from sentiment_mlops.store import load_model
m = load_model(Settings())
print(json.dumps({"version": m.version, "source": m.source, "p": m.predict_proba(["what a lovely crew"]).round(12).tolist()}))
"""


def test_two_processes_downloading_the_same_version_end_with_one_good_copy(small_model, tmp_path):
    "Two workers starting together on an empty cache both load the version; one intact copy remains."
    s, result = small_model
    env = {**os.environ, "MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_LOAD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert answers[0]["p"] == answers[1]["p"] and {a["version"] for a in answers} == {result.version}
    versions = tmp_path / "cache" / s.model_name / "versions"
    assert [p.name for p in versions.iterdir()] == [result.version]  # one copy; no half-written .download-* left behind
    from sentiment_mlops.store import load_from_cache
    assert load_from_cache(Settings(tracking_uri="http://127.0.0.1:9", model_cache_dir=tmp_path / "cache")).version == result.version


def test_a_truncated_cache_entry_heals_while_the_registry_answers(small_model, tmp_path):
    "With `version.json` truncated, the server quarantines the copy and downloads it again, rather than reading it as 'registry unreachable'."
    from sentiment_mlops.store import load_model
    s, result = small_model
    first = load_model(Settings(tracking_uri=s.tracking_uri, model_cache_dir=tmp_path / "cache"))
    (first.path / "version.json").write_text('{"name": "SentimentAnalysisModel", "run_')
    t0 = time.time()
    with api_server(tmp_path, api_env(s, tmp_path), wait=None) as api:
        wait_for(api.url + "/ready", timeout=30, proc=api.proc)
        ready_after = time.time() - t0
        assert api.get("/model").json()["version"] == result.version
    quarantined = list((tmp_path / "cache" / s.model_name / "quarantine").iterdir())
    print(f"\ntruncated version.json: ready after {ready_after:.1f} s, {len(quarantined)} entry quarantined")
    assert len(quarantined) == 1 and (first.path / "version.json").exists()
