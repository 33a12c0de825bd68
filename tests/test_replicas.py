"""Several uvicorn workers — Prometheus metrics summed across workers, and every worker following a promotion."""
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from mlflow import MlflowClient

from servers import api_env, api_server, metric, wait_until
from sentiment_mlops.config import PRODUCTION, Settings
from sentiment_mlops.training.train import TrainParams, train


def test_two_workers_metrics_add_up_and_both_follow_the_alias(tmp_path):
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", min_macro_f1=0.5)
    v1 = train(TrainParams(sample_size=1500), s).version
    client = MlflowClient(s.tracking_uri)
    client.set_registered_model_alias(s.model_name, PRODUCTION, v1)
    env = {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": tmp_path / "cache",
           "SENTIMENT_LOG_DIR": tmp_path / "logs", "SENTIMENT_RELOAD_CHECK_SECONDS": "1"}
    with api_server(tmp_path, env, args=["--workers", "2"], wait="/ready") as api:
        def one(i):
            with httpx.Client(timeout=30) as c:  # a new connection each time: requests spread over both workers
                return c.post(api.url + "/predict", json={"text": f"thanks for flight {i}"}).status_code
        with ThreadPoolExecutor(8) as pool: codes = list(pool.map(one, range(400)))
        assert codes.count(200) == 400
        m = api.get("/metrics").text
        got = metric(m, "sentiment_http_requests_total", endpoint="/predict", method="POST", status="200")
        preds = metric(m, "sentiment_predictions_total")
        print(f"\n2 workers: 400 answered, /metrics counts {got:.0f} requests and {preds:.0f} predictions")
        assert got == 400 and preds == 400

        v2 = train(TrainParams(sample_size=1500, seed=7), s).version
        client.set_registered_model_alias(s.model_name, PRODUCTION, v2)
        def answer(i):  # the version that answered, or the status of a refusal
            r = httpx.post(api.url + "/predict", json={"text": "ok"}, timeout=30)
            if r.status_code == 200: return r.json()["model"]["version"]
            assert r.status_code == 503 and "retry-after" in r.headers, (r.status_code, r.text)  # shed while a worker loads
            return 503
        def all_new():
            with ThreadPoolExecutor(8) as pool: versions = list(pool.map(answer, range(40)))
            return set(versions) == {v2}
        wait_until(all_new, 60, every=1)
        info = api.get("/metrics").text
        assert metric(info, "sentiment_model_info", name=s.model_name, version=v2) == 1


def test_two_workers_answer_kept_alive_connections_without_the_nagle_stall(small_model, tmp_path):
    """With several workers uvicorn's own listening socket left Nagle's algorithm on: each answer on a kept-alive
    connection waited ~40 ms for the client's delayed ACK. Sequential requests on one connection must not."""
    s, _ = small_model
    with api_server(tmp_path, api_env(s, tmp_path), args=["--workers", "2"], wait="/ready") as api:
        with httpx.Client(base_url=api.url, timeout=30) as c:  # one kept-alive connection
            times = []
            for i in range(40):
                t0 = time.perf_counter()
                assert c.post("/predict", json={"text": f"the crew on flight {i} was great"}).status_code == 200
                times.append(time.perf_counter() - t0)
    median = statistics.median(times[5:])
    print(f"\n2 workers, one kept-alive connection: median {median * 1000:.1f} ms per request")
    assert median < 0.02, median  # (with the stall: >= 40 ms each)
