"""The gate, promote/rollback/list from the CLI, and a running API switching version under load without a failure."""
import threading

import httpx
from mlflow import MlflowClient

from conftest import REPO, run_py
from servers import api_server, wait_until
from sentiment_mlops.config import Settings
from sentiment_mlops.training.train import TrainParams, train


def cli(s: Settings, *args):
    return run_py(["-m", "sentiment_mlops.registry", *args], REPO,
                  {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": str(s.model_cache_dir),
                   "SENTIMENT_MIN_MACRO_F1": str(s.min_macro_f1), "SENTIMENT_ACTOR": "ci-test"})


def test_gate_promote_rollback_list_and_a_live_switch(tmp_path):
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", model_cache_dir=tmp_path / "cli-cache", min_macro_f1=0.5)
    good = train(TrainParams(sample_size=3000), s)
    toy = train(TrainParams(sample_size=3000, model="nb"), s)
    assert (good.version, toy.version) == ("1", "2")

    r = cli(s, "promote", "--version", "1", "--reason", "first release")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "@production -> version 1" in r.stdout
    r = cli(s, "promote", "--version", "2")
    print("\n" + r.stderr)
    assert r.returncode == 1 and "failed the gate" in r.stderr and "champion v1" in r.stderr
    client = MlflowClient(s.tracking_uri)
    v1 = client.get_model_version(s.model_name, "1").tags
    assert v1["gate_passed"] == "true" and v1["promoted_to_production_by"] == "ci-test"
    assert v1["promoted_to_production_reason"] == "first release"
    assert client.get_model_version(s.model_name, "2").tags["gate_passed"] == "false"
    card = client.download_artifacts(good.run_id, "model_card/v1/model_card.md", str(tmp_path))
    assert "Behavioural checks" in open(card).read()

    env = {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": tmp_path / "api-cache",
           "SENTIMENT_LOG_DIR": tmp_path / "logs", "SENTIMENT_RELOAD_CHECK_SECONDS": "1"}
    with api_server(tmp_path, env, wait="/ready") as api:
        assert api.get("/model").json()["version"] == "1"
        stop, seen, failures, lock = threading.Event(), {}, [], threading.Lock()
        def hammer():
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    try:
                        r = c.post(api.url + "/predict", json={"text": "the crew was lovely, thanks"})
                        with lock:
                            if r.status_code == 200: seen[r.json()["model"]["version"]] = seen.get(r.json()["model"]["version"], 0) + 1
                            else: failures.append(r.status_code)
                    except httpx.HTTPError as e:
                        with lock: failures.append(repr(e))
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads: t.start()
        try:
            r = cli(s, "promote", "--version", "2", "--force", "--reason", "forced for the switch test")
            assert r.returncode == 0 and "FORCED" in r.stdout, r.stderr[-2000:]
            wait_until(lambda: api.get("/model").json()["version"] == "2", 60)
            wait_until(lambda: seen.get("2", 0) > 50, 60)
            r = cli(s, "rollback")
            assert r.returncode == 0 and "-> version 1 (was 2)" in r.stdout, r.stderr[-2000:]
            wait_until(lambda: api.get("/model").json()["version"] == "1", 60)
        finally:
            stop.set()
            for t in threads: t.join()
        print(f"live switch 1 -> 2 -> 1 under 8 clients: answers per version {seen}, failures {len(failures)}")
        assert not failures and seen.get("1") and seen.get("2")

    r = cli(s, "list")
    assert r.returncode == 0
    table = r.stdout.split("\n\n")[0]  # (the versions; the alias history follows after a blank line)
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "production" in rows["1"] and "true" in rows["1"] and "false" in rows["2"]


def test_the_gate_refuses_a_candidate_that_is_worse_off_its_domain(tmp_path):
    "A candidate trained without the domain guard keeps its in-domain quality but drops off-domain: refused, and said why."
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", model_cache_dir=tmp_path / "cache", min_macro_f1=0.5)
    train(TrainParams(sample_size=3000), s)
    assert cli(s, "promote", "--version", "1").returncode == 0
    train(TrainParams(sample_size=3000, guard=False), s)
    r = cli(s, "promote", "--version", "2")
    print("\n" + r.stderr)
    assert r.returncode == 1 and "out-of-domain macro-F1" in r.stderr and "champion v1" in r.stderr
    tags = MlflowClient(s.tracking_uri).get_model_version(s.model_name, "2").tags
    assert "out-of-domain macro-F1" in tags["gate_reasons"] and float(tags["ood_macro_f1"]) < 0.45
    r = cli(s, "list")
    assert r.returncode == 0 and "ood_f1" in r.stdout, r.stderr

