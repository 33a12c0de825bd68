"""Throughput and latency of `python -m sentiment_mlops.serve` against `mlflow models serve`, same model, same load.

    python benchmarks/serve_vs_mlflow.py [--tracking-uri URI] [--seconds 10] [--connections 16] [--rounds 3]

Both servers serve SentimentAnalysisModel@production (the default full-corpus model, trained first if the
store has none) on 127.0.0.1; wrk drives each for `--seconds` per point, single texts and batches of 256.
The two servers take turns for `--rounds` rounds and each figure is the median of its rounds: on a shared
machine whose speed drifts, one run per side would compare two different machines.
Bars: single-text requests/s >= 6x MLflow's, p99 <= 25 ms at 16 clients; batch texts/s >= 2x;
and, once both servers are stopped, the served scorer itself in this process, one thread: >= 40,000 texts/s.
Both sides serve the same registered version — the portable MLflow model, which answers labels and probabilities.
This service runs as a team would expose it: every prediction needs an API key (a keys file, one `predict` key sent by
every request), tracing off; `mlflow models serve` has no keys.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import body, free_port, post, production_store, settled, start, start_api, stop, test_texts, wrk, recorded


def median_run(runs: list[dict]) -> dict:
    "The median of each figure over `runs`, with the errors summed."
    med = lambda k: statistics.median(r[k] for r in runs)
    return {"rps": med("rps"), "p50": med("p50"), "p99": med("p99"), "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs)}


def in_process(settings, texts: list[str], batch: int, seconds: float = 5.0) -> float:
    "Texts/s of the served model's own `predict` (what the servers loaded: the cached version), one thread, `batch` per call."
    from sentiment_mlops.store import load_model
    model, batches = load_model(settings), [texts[i:i + batch] for i in range(0, len(texts) - batch + 1, batch)]
    for b in batches: model.predict(b)  # warm up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for b in batches: model.predict(b); n += len(b)
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri"); ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16); ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    uri = production_store(a.tracking_uri)
    texts = test_texts()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache")}  # (the model loads without pickle)
    from sentiment_mlops.keys import new_key, write_keys
    key, record = new_key("bench", ["predict"])
    write_keys(tmp / "keys.json", {"bench": record})
    auth = {"Authorization": f"Bearer {key}"}
    p_ml = free_port()
    mlf, t_ml = start([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/SentimentAnalysisModel@production",
                       "--env-manager", "local", "-h", "127.0.0.1", "-p", str(p_ml)], env, tmp / "mlflow.log",
                      f"http://127.0.0.1:{p_ml}/ping")
    ours, t_us = start_api({**env, "SENTIMENT_API_KEYS_FILE": str(tmp / "keys.json")}, tmp / "ours.log")
    try:
        settled(ours.url)  # steady state: the background registry check (and its MLflow import) is done
        probe = texts[:8]
        a_lab = [p["label"] for p in post(f"{ours.url}/predict/batch", {"texts": probe}, auth).json()["predictions"]]
        b_lab = [p["label"] for p in post(f"{mlf.url}/invocations", {"dataframe_records": [{"text": t} for t in probe]}).json()["predictions"]]
        assert a_lab == b_lab, (a_lab, b_lab)  # same model, same answers

        single_ours = [body({"text": t}) for t in texts]
        single_ml = [body({"dataframe_records": [{"text": t}]}) for t in texts]
        batches = [texts[i:i + a.batch] for i in range(0, len(texts) - a.batch + 1, a.batch)]
        batch_ours = [body({"texts": b}) for b in batches]
        batch_ml = [body({"dataframe_records": [{"text": t} for t in b]}) for b in batches]

        rows = []
        for name, path_o, bo, path_m, bm, per in [
                ("single text", "/predict", single_ours, "/invocations", single_ml, 1),
                (f"batch of {a.batch}", "/predict/batch", batch_ours, "/invocations", batch_ml, a.batch)]:
            conns = a.connections if per == 1 else 4
            wrk(ours.url, path_o, bo, 2, conns, headers=auth); wrk(mlf.url, path_m, bm, 2, conns)  # warm both up
            runs_o, runs_m = [], []
            for _ in range(a.rounds):  # take turns
                runs_o.append(wrk(ours.url, path_o, bo, a.seconds, conns, headers=auth)); runs_m.append(wrk(mlf.url, path_m, bm, a.seconds, conns))
            print(f"{name}, {conns} clients, each round (ours / mlflow {'req' if per == 1 else 'texts'}/s): " + ", ".join(
                f"{o['rps'] * per:.0f} / {m['rps'] * per:.0f}" for o, m in zip(runs_o, runs_m)))
            rows.append((name, conns, per, median_run(runs_o), median_run(runs_m)))
        print(f"\nsame model (SentimentAnalysisModel@production), 127.0.0.1, wrk {a.seconds} s per point, "
              f"median of {a.rounds} alternating rounds")
        print("sentiment_mlops with an API key on every request, tracing off; mlflow models serve without keys")
        print(f"start-up to ready: sentiment_mlops {t_us:.1f} s, mlflow models serve {t_ml:.1f} s\n")
        print(f"{'load':<16}{'clients':>8} | {'sentiment_mlops':>32} | {'mlflow models serve':>32} | ratio")
        for name, conns, per, o, m in rows:
            unit = "req/s" if per == 1 else "texts/s"
            fmt = lambda r, per=per, unit=unit: f"{r['rps'] * per:9.0f} {unit:<7} p50 {r['p50']:6.1f} ms p99 {r['p99']:6.1f} ms"
            print(f"{name:<16}{conns:>8} | {fmt(o)} | {fmt(m)} | {o['rps'] / m['rps']:.2f}x")
            for who, r in (("sentiment_mlops", o), ("mlflow", m)):
                if r["non2xx"] or r["socket_errors"]: print(f"  ! {who}: {r['non2xx']} non-2xx, {r['socket_errors']} socket errors")
        single, batch = rows[0], rows[1]
        print("\nbars: single req/s >= 6x MLflow: {}; p99 <= 25 ms: {}; batch texts/s >= 2x MLflow: {}".format(
            "PASS" if single[3]["rps"] >= 6 * single[4]["rps"] else "FAIL", "PASS" if single[3]["p99"] <= 25 else "FAIL",
            "PASS" if batch[3]["rps"] >= 2 * batch[4]["rps"] else "FAIL"))
    finally:
        stop(ours); stop(mlf)
    from sentiment_mlops.config import Settings
    rate = in_process(Settings(tracking_uri=uri, model_cache_dir=tmp / "cache"), texts, a.batch)
    print(f"in-process, one thread, batches of {a.batch}: {rate:,.0f} texts/s; >= 40,000: {'PASS' if rate >= 40_000 else 'FAIL'}")


if __name__ == "__main__":
    with recorded("serve_vs_mlflow", "Serving: sentiment_mlops against `mlflow models serve`, same model"): main()
