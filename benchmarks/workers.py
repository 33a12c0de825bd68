"""Using the cores: single-text throughput of the same server with one and with two worker processes (16 clients, the two
taking turns), and, for the two workers, that metrics and the prediction log still account for every answer.
Bar: two workers >= 1.7x one worker's requests per second.
Each round shows the cores its busiest processes used (each worker listens on a socket of its own, so the kernel shares
the 16 connections between them); the run ends with the CPU an answer costs — with one worker, with two, and with one worker
given 8 clients, each of two workers' share — which, with the cores wrk itself needs, bounds the ratio on this machine.

    python benchmarks/workers.py [--tracking-uri URI] [--seconds 8] [--rounds 2]
"""
import argparse
import os
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from common import body, production_store, recorded, start_api, stop, test_texts, wrk


def answered(run: dict) -> int:
    "Requests wrk completed in a run, less the ones that were not 2xx (the one each connection has in flight at the end is not counted)."
    return int(re.search(r"(\d+) requests in", run["raw"])[1]) - run["non2xx"]


def cpu_by_process(pid: int) -> dict[int, float]:
    "CPU time (user and system) so far of the server and of each of its child processes (the workers), by process id."
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ticks = {p: sum(map(int, Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[11:13])) for p in [pid, *map(int, kids)]}
    return {p: t / os.sysconf("SC_CLK_TCK") for p, t in ticks.items()}


def busiest(before: dict, after: dict, seconds: float, n: int = 2) -> list[float]:
    "Cores used by the `n` busiest processes between two `cpu_by_process` readings."
    return sorted(((after[p] - before.get(p, 0.0)) / seconds for p in after), reverse=True)[:n]


def counted(url: str) -> int:
    "`POST /predict` answers with status 200 in the server's Prometheus metrics (all workers)."
    text = httpx.get(url + "/metrics", timeout=30).text
    return int(sum(float(m[1]) for m in re.finditer(r'^sentiment_http_requests_total\{[^}]*endpoint="/predict"[^}]*status="200"[^}]*\} (\S+)$',
                                                     text, re.M)))


def logged(log_dir: Path, settle_s: float = 2.0) -> int:
    "Records in the prediction log (every worker's), once two reads `settle_s` apart agree."
    from sentiment_mlops.predlog import read_log
    last = -1
    while True:
        n = len(read_log(log_dir)[0])
        if n == last: return n
        last = n; time.sleep(settle_s)


def measured(server, bodies: list[str], seconds: int, clients: int, workers: int) -> dict:
    "A wrk run of `POST /predict` with the cores the server (`cores`), its `workers` busiest processes and wrk (`client`) used."
    c0, w0 = cpu_by_process(server.proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    run = wrk(server.url, "/predict", bodies, seconds, clients)
    w1, c1 = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_by_process(server.proc.pid)
    return {**run, "cores": (sum(c1.values()) - sum(c0.values())) / seconds, "workers": busiest(c0, c1, seconds, workers),
            "client": (w1.ru_utime + w1.ru_stime - w0.ru_utime - w0.ru_stime) / seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri"); ap.add_argument("--seconds", type=int, default=8); ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    uri, texts = production_store(a.tracking_uri), test_texts()
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    servers = {}
    for n in (1, 2):
        env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / f"cache{n}"), "SENTIMENT_LOG_DIR": str(tmp / f"logs{n}")}
        servers[n], _ = start_api(env, tmp / f"workers{n}.log", "--workers", n)
    try:
        bodies = [body({"text": t}) for t in texts]
        for s in servers.values(): wrk(s.url, "/predict", bodies, 3, 16)  # warm up
        before = {n: (counted(s.url), logged(tmp / f"logs{n}")) for n, s in servers.items()}
        runs = {1: [], 2: []}
        for _ in range(a.rounds):
            for n, s in servers.items(): runs[n].append(measured(s, bodies, a.seconds, 16, n))
        half = measured(servers[1], bodies, a.seconds, 8, 1)  # (one worker with the clients each of two has)
        med = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p99", "cores", "client")} for n, rs in runs.items()}
        print(f"single text, 16 clients, wrk {a.seconds} s, median of {a.rounds} alternating rounds")
        for n in (1, 2):
            print(f"  {n} worker{'s' if n > 1 else ' '} {med[n]['rps']:8.0f} req/s  p99 {med[n]['p99']:6.2f} ms  "
                  f"CPU: server {med[n]['cores']:.2f}, wrk {med[n]['client']:.2f} of {os.cpu_count()} cores  "
                  "(rounds: " + ", ".join(f"{r['rps']:.0f} [{' + '.join(f'{c:.2f}' for c in r['workers'])}]" for r in runs[n]) + ")")
        print("  [ ]: cores used by the busiest process(es) of each round")
        per = {n: 1e6 * r["cores"] / r["rps"] for n, r in (*med.items(), ("half", half))}
        print(f"CPU per answer: one worker {per[1]:.0f} µs, two workers {per[2]:.0f} µs; one worker with 8 clients (each of two workers' share, so"
              f" smaller micro-batches) {per['half']:.0f} µs. The cores wrk leaves allow two workers at most "
              f"{(os.cpu_count() - med[2]['client']) / med[1]['cores']:.2f}x one at one worker's cost per answer")
        ratio = med[2]["rps"] / med[1]["rps"]
        sent = sum(answered(r) for r in runs[2])
        got = (counted(servers[2].url) - before[2][0], logged(tmp / "logs2") - before[2][1])
        in_flight = 16 * a.rounds  # (answered by the server after wrk stopped counting)
        print(f"two workers: {sent:,} answers counted by wrk (+ up to {in_flight} in flight at the ends of runs); "
              f"counted in /metrics {got[0]:,}; written to the log {got[1]:,}")
        accounted = got[0] == got[1] and sent <= got[0] <= sent + in_flight
        print(f"bar: two workers >= 1.7x one: {ratio:.2f}x — {'PASS' if ratio >= 1.7 else 'FAIL'}; "
              f"metrics and log account for every answer: {'PASS' if accounted else 'FAIL'}")
    finally:
        for s in servers.values(): stop(s)


if __name__ == "__main__":
    with recorded("workers", "Using the cores: one worker and two"): main()
