"""A soak: the service for N minutes at about half its capacity — single texts and batches, the alias moved and a reload
forced every few minutes, the prediction log rotating — watching for what only shows over time.

    python benchmarks/soak.py [--minutes 30] [--workers 2] [--sample-size 3000] [--no-record]

Every 10 s it samples the server's resident memory, open file descriptors and threads (all its processes) and the
prediction log's backlog; at the end it reports each one's slope over the second half of the run (the first half
includes warming up), and checks that every answered prediction is in the log exactly once and that no answer was a 5xx.
Memory is judged on its floor, the least resident size of each minute: while a new version loads, a worker briefly holds
two models, and a sample that falls into a load is not growth; a leak raises the floor. The slope of all samples is printed too.
Bars: memory floor slope <= 10 MB/hour; descriptors and threads do not grow; backlog back to 0 once traffic stops; nothing lost or repeated; no 5xx.
The load comes from a small asyncio client of its own (pre-built requests on kept-alive connections, paced), which costs
the machine far less than the server it measures.
"""
import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from common import recorded, start_api, stop, test_texts

TOKEN = "soak-admin-token-0123456789"


def processes(pid: int) -> list[int]:
    "The server and its worker processes."
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split() if Path(f"/proc/{pid}").exists() else []
    return [pid, *map(int, kids)]


def sample(pid: int) -> dict:
    "Resident memory (MiB), open descriptors and threads of the server's processes, summed."
    rss = fds = threads = 0
    for p in processes(pid):
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{p}/status").read_text().splitlines() if ":" in line)
            rss += int(status["VmRSS"].split()[0]) / 1024; threads += int(status["Threads"]); fds += len(os.listdir(f"/proc/{p}/fd"))
        except (FileNotFoundError, KeyError, ProcessLookupError): pass
    return {"rss_mb": rss, "fds": fds, "threads": threads}


def slope_per_hour(ts: list[float], ys: list[float]) -> float:
    "Least-squares slope of `ys` over `ts` (seconds), per hour."
    return float(np.polyfit(np.asarray(ts) - ts[0], ys, 1)[0] * 3600) if len(ts) > 2 else 0.0


async def client(host: str, port: int, bodies: list[tuple[bytes, str, int]], rate: float, until: float, seen: dict):
    "One kept-alive connection sending pre-built requests at `rate` per second until `until`; answers counted in `seen`."
    reader, writer = await asyncio.open_connection(host, port)
    gap, nxt, i = 1 / rate, time.monotonic(), random.randrange(len(bodies))
    try:
        while time.monotonic() < until:
            path_body, rid, items = bodies[i % len(bodies)]; i += 1
            writer.write(path_body.replace(b"{RID}", rid.encode()))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            seen["status"][status] = seen["status"].get(status, 0) + 1
            if status == 200: seen["answered"][rid] = items
            nxt += gap
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    finally:
        writer.close()


def requests(texts: list[str], n: int) -> list[tuple[bytes, str, int]]:
    "`n` pre-built requests — nine single texts to one batch of 20 — each with a unique request id to fill in."
    out = []
    for k in range(n):
        rid = f"soak-{k}"
        if k % 10 == 9: path, body, items = "/predict/batch", {"texts": random.sample(texts, 20)}, 20
        else: path, body, items = "/predict", {"text": random.choice(texts)}, 1
        data = json.dumps(body).encode()
        out.append(((f"POST {path} HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nX-Request-ID: {{RID}}\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n").encode() + data, rid, items))
    return out


def store(tmp: Path, sample_size: int) -> str:
    "A throw-away store with two small versions: production is moved between them during the soak."
    from sentiment_mlops.config import PRODUCTION, Settings
    from sentiment_mlops.training.train import TrainParams, train
    s = Settings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", min_macro_f1=0.5)
    for seed in (42, 7): train(TrainParams(sample_size=sample_size, seed=seed, ood=False), s)
    s.mlflow_client().set_registered_model_alias(s.model_name, PRODUCTION, "1")
    return s.tracking_uri


def capacity(url: str, texts: list[str]) -> float:
    "Single-text requests per second the server answers at 16 clients (5 s of wrk)."
    from common import wrk
    return wrk(url, "/predict", [json.dumps({"text": t}) for t in texts[:500]], 5, 16)["rps"]


def soak(url: str, pid: int, tracking_uri: str, minutes: float, rate: float, texts: list[str]) -> tuple[list[dict], dict]:
    "Drive the server for `minutes` at `rate` requests/s, moving the alias and reloading every few minutes; the samples and what was seen."
    from mlflow import MlflowClient
    host, port = url.removeprefix("http://").split(":")
    seen, samples, conns = {"status": {}, "answered": {}}, [], 16
    bodies = requests(texts, int(rate * minutes * 60 * 1.2) + 1000)
    per_conn = [bodies[k::conns] for k in range(conns)]
    t0, until = time.monotonic(), time.monotonic() + minutes * 60
    every = max(30.0, minutes * 60 / 10)  # (an alias move or a reload about ten times a run)
    async def run():
        tasks = [asyncio.create_task(client(host, int(port), per_conn[k], rate / conns, until, seen)) for k in range(conns)]
        n = 0
        while time.monotonic() < until:
            await asyncio.sleep(min(10, max(0, until - time.monotonic())))
            samples.append(await asyncio.to_thread(snapshot, url, pid, t0))
            if samples[-1]["t"] >= (n + 1) * every:
                n += 1
                if n % 2: await asyncio.to_thread(MlflowClient(tracking_uri).set_registered_model_alias, "SentimentAnalysisModel",
                                                  "production", "2" if n % 4 == 1 else "1")
                else: await asyncio.to_thread(httpx.post, url + "/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        await asyncio.gather(*tasks)
        samples.append(await asyncio.to_thread(drained, url, pid, t0))
    asyncio.run(run())
    return samples, seen


def snapshot(url: str, pid: int, t0: float) -> dict:
    "One sample: seconds since `t0`, the server's memory, descriptors and threads, and the prediction log's backlog."
    pending = httpx.get(url + "/health", timeout=10).json()["prediction_log"]["pending"]
    return {"t": time.monotonic() - t0, **sample(pid), "log_pending": pending}


def drained(url: str, pid: int, t0: float, within: float = 10.0) -> dict:
    "A `snapshot` taken once the traffic has stopped and the prediction log's backlog is empty, or after `within` seconds."
    until = time.monotonic() + within
    while (s := snapshot(url, pid, t0))["log_pending"] and time.monotonic() < until: time.sleep(0.1)
    return s


def floor(samples: list[dict], key: str, every: float = 60.0) -> tuple[list[float], list[float]]:
    "The least value of `key` in each `every` seconds of `samples`, at each interval's middle: `(times, values)`."
    groups = {}
    for s in samples: groups.setdefault(int(s["t"] // every), []).append(s[key])
    return [(k + 0.5) * every for k in sorted(groups)], [min(groups[k]) for k in sorted(groups)]


def report(samples: list[dict], seen: dict, logged: dict, minutes: float) -> bool:
    "Print the figures and the bars; whether every bar passes."
    half = [s for s in samples if s["t"] >= samples[-1]["t"] / 2]
    ts = [s["t"] for s in half]
    slopes = {k: slope_per_hour(ts, [s[k] for s in half]) for k in ("rss_mb", "fds", "threads", "log_pending")}
    slopes["rss_floor"] = slope_per_hour(*floor(half, "rss_mb"))
    first, last = samples[0], samples[-1]
    answered = sum(seen["answered"].values())
    missing = [r for r, n in seen["answered"].items() if logged.get(r, 0) != n]
    fives = sum(n for st, n in seen["status"].items() if st >= 500)
    print(f"\nsoak, {minutes:g} minutes: {sum(seen['status'].values()):,} requests, statuses {dict(sorted(seen['status'].items()))}")
    print(f"{'':<14}{'first':>10}{'last':>10}{'slope (2nd half)':>22}")
    for k, unit in (("rss_mb", "MiB"), ("fds", ""), ("threads", ""), ("log_pending", "")):
        print(f"{k:<14}{first[k]:>10.0f}{last[k]:>10.0f}{slopes[k]:>16.1f} {unit}/h")
    lo = floor(samples, "rss_mb")[1]
    print(f"{'rss floor':<14}{lo[0]:>10.0f}{lo[-1]:>10.0f}{slopes['rss_floor']:>16.1f} MiB/h   (least of each minute)")
    print(f"predictions answered {answered:,}; in the log {sum(logged.values()):,}; requests whose records are not there exactly once: "
          f"{len(missing)}")
    judged = minutes >= 10  # (a shorter run is mostly warming up: its memory slope says little)
    bars = {"memory floor slope <= 10 MB/h" + ("" if judged else " (judged on runs of 10 minutes or more)"): slopes["rss_floor"] <= 10 or not judged,
            "descriptors do not grow": max(s["fds"] for s in half) <= max(s["fds"] for s in samples[:3]) + 4,
            # (thread pools — the model's, the monitor's, anyio's — start threads as they are first needed and let idle ones go:
            # growth is judged after the first half, against the first half's most, by 2 a worker)
            "threads do not grow": max(s["threads"] for s in half) <= max(s["threads"] for s in samples[:max(1, len(samples) - len(half))]) + 4,
            "log backlog back to 0 once traffic stops": last["log_pending"] == 0, "every answered prediction logged once": not missing, "no 5xx": fives == 0}
    print("bars: " + "; ".join(f"{k}: {'PASS' if ok else 'FAIL'}" for k, ok in bars.items()))
    if not judged: print(f"(memory floor slope over this short run: {slopes['rss_floor']:+.0f} MB/h, not judged)")
    return all(bars.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30); ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sample-size", type=int, default=3000); ap.add_argument("--load", type=float, default=0.5,
                                                                              help="share of the measured capacity to run at")
    ap.add_argument("--no-record", action="store_true", help="do not write the result into the benchmarks page")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    uri, texts = store(tmp, a.sample_size), test_texts(3000)
    env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache"), "SENTIMENT_LOG_DIR": str(tmp / "logs"),
           "SENTIMENT_ADMIN_TOKEN": TOKEN, "SENTIMENT_RELOAD_CHECK_SECONDS": "10", "SENTIMENT_LOG_MAX_BYTES": str(4 * 2**20),
           "SENTIMENT_MONITOR_INTERVAL_SECONDS": "30"}
    server, _ = start_api(env, tmp / "server.log", "--workers", a.workers)
    def run():
        cap = capacity(server.url, texts)
        rate = max(20.0, cap * a.load)
        print(f"capacity at 16 clients: {cap:,.0f} req/s; soaking at {rate:,.0f} req/s ({a.load:.0%}) with {a.workers} worker(s)")
        samples, seen = soak(server.url, server.proc.pid, uri, a.minutes, rate, texts)
        stop(server)
        from sentiment_mlops.predlog import read_log
        df, _ = read_log(tmp / "logs")
        logged = df[df["request_id"].str.startswith("soak-")].groupby("request_id").size().to_dict()
        return report(samples, seen, logged, a.minutes)
    try:
        if a.no_record: ok = run()
        else:
            with recorded("soak", "A soak: memory, descriptors, threads and the log over time"): ok = run()
    finally: stop(server)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
