"""Overload: one worker, 1,024 clients sending single texts for 10 s from the moment `/ready` answers 200, on a fresh server
each run. Every answer must be 200 or 503 (shed, not queued). Bar: p99 <= 250 ms (median of the runs).

    python benchmarks/overload.py [--tracking-uri URI] [--repeat 3]
"""
import argparse
import json
import statistics
import tempfile
from pathlib import Path

from common import production_store, recorded, start_api, stop, test_texts, wrk
from servers import first_ready


def one_run(env: dict, tmp: Path, bodies: list[str], i: int) -> dict:
    server, _ = start_api(env, tmp / f"run{i}.log", wait="/health")
    try:
        first_ready(server.url)  # (no warm-up: the load starts the moment the worker says it is ready)
        r = wrk(server.url, "/predict", bodies, 10, 1024, threads=4)
    finally: stop(server)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri"); ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    uri = production_store(a.tracking_uri)
    tmp = Path(tempfile.mkdtemp(prefix="bench-overload-"))
    env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache"), "SENTIMENT_LOG_DIR": str(tmp / "logs"),
           "SENTIMENT_RELOAD_CHECK_SECONDS": "0"}
    bodies = [json.dumps({"text": t}, ensure_ascii=False) for t in test_texts(2000, seed=6)]
    runs = [one_run(env, tmp, bodies, i) for i in range(a.repeat)]
    print(f"\noverload: 1 worker, 1,024 clients, 10 s from /ready, {a.repeat} fresh servers")
    for i, r in enumerate(runs):
        print(f"  run {i + 1}: p50 {r['p50']:6.1f} ms   p99 {r['p99']:6.1f} ms   socket errors {r['socket_errors']}")
    p99 = statistics.median(r["p99"] for r in runs)
    print(f"bar: p99 <= 250 ms (median of runs: {p99:.1f} ms): {'PASS' if p99 <= 250 else 'FAIL'}")


if __name__ == "__main__":
    with recorded("overload", "Overload: 1,024 clients on one worker"): main()
