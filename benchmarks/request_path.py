"""Where a request's time goes, as ratios on one machine in one run.

In process, on the production model's scorer: each stage of scoring one held-out tweet and a batch of 256 (normalisation,
tokenising, each feature block, the products, the mixture and the guard's head, the OOV rates), as the median of repeated
timings. Over HTTP, one uvicorn worker each, wrk with 16 connections, `--seconds` per point, twice each: the ceilings — a bare
FastAPI app answering a constant with pydantic request and response, as `async def` and as plain `def` — and this service's
`GET /health`, `POST /predict` and `POST /predict/batch` of 256. What a request spends outside the model is its time at that
rate (one worker: 1 / req/s) less the scorer's.
Bar (issue "Performance"): `POST /predict` at >= 50 % of the bare `async def` endpoint's req/s, p99 <= 10 ms.

    python benchmarks/request_path.py [--tracking-uri URI] [--seconds 8]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, body, production_store, recorded, stop, test_texts
from sentiment_mlops.scorer import char_wb_counts, product, tfidf_weight
from explain_cost import serve
from servers import Server, free_port, wait_for, wrk


def timed(fn, repeat: int) -> float:
    "Median seconds of `fn()` over `repeat` calls (after one warm-up call)."
    fn(); out = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return statistics.median(out)


def block_fn(scorer, k: int, seen: list[str], tokens, spans):
    "A function computing feature block `k` alone (what `FastScorer.features` does for that block)."
    b, counter, idf, _ = scorer.blocks[k]
    if b["kind"] == "lexicon": return lambda: counter.standardised(seen, spans)
    count = (lambda: counter.counts(seen, tokens)) if b["kind"] == "word" else (lambda: char_wb_counts(seen, counter, b["ngram_range"], spans))
    return lambda: tfidf_weight(count(), idf, b["sublinear_tf"], b["norm"] == "l2")


def stages(scorer, texts: list[str], repeat: int) -> list[tuple[str, float]]:
    "Seconds of each stage of `scorer.predict(texts)`, in order, and the whole call."
    seen = scorer.normalize(texts)
    tokens, spans = scorer.tokenize(seen)
    out = [("normalise", timed(lambda: scorer.normalize(texts), repeat)), ("tokenise", timed(lambda: scorer.tokenize(seen), repeat))]
    for k, (b, *_rest) in enumerate(scorer.blocks):
        out.append((f"features: {b['kind']}" + (f" {tuple(b['ngram_range'])}" if "ngram_range" in b else ""),
                    timed(block_fn(scorer, k, seen, tokens, spans), repeat)))
    features = scorer.features(seen, tokens, spans)
    out.append(("products (all blocks)", timed(lambda: [product(X, W) for X, (*_, W) in zip(features, scorer.blocks)], repeat)))
    S = scorer.scores(seen, tokens, spans)
    out.append(("mixture and guard head", timed(lambda: scorer._outputs(S.copy(), seen), repeat)))
    if scorer.words is not None: out.append(("OOV rates", timed(lambda: scorer.words.oov_rates(seen, tokens), repeat)))
    out.append(("whole predict()", timed(lambda: scorer.predict(texts), repeat)))
    return out


def bare(app: str, log: Path) -> Server:
    "A bare FastAPI app of `bare_app.py` under one uvicorn worker, ready."
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", f"bare_app:{app}", "--port", str(port), "--log-level", "warning",
                                 "--no-access-log"], cwd=REPO / "benchmarks", stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    wait_for(server.url + "/docs", proc=proc)
    return server


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri")
    ap.add_argument("--seconds", type=int, default=8)
    a = ap.parse_args()
    from sentiment_mlops.config import Settings
    from sentiment_mlops.store import load_model
    uri, tmp = production_store(a.tracking_uri), Path(tempfile.mkdtemp(prefix="request-path-"))
    texts = test_texts(2000)
    scorer = load_model(Settings(tracking_uri=uri, model_cache_dir=tmp / "cache"), "models:/SentimentAnalysisModel@production").predictor
    one, batch = stages(scorer, texts[:1], 300), stages(scorer, texts[:256], 30)
    print("in process, one thread (median):")
    print(f"{'stage':<28}{'1 text':>12}{'256 texts':>14}{'per text':>12}")
    for (name, t1), (_, t256) in zip(one, batch):
        print(f"{name:<28}{t1 * 1e6:>9.0f} µs{t256 * 1e3:>11.2f} ms{t256 / 256 * 1e6:>9.1f} µs")
    batch_model = batch[-1][1]
    sixteen = timed(lambda: scorer.predict(texts[:16]), 100)  # (what micro-batching makes of 16 clients' single texts, at most)

    env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache"), "SENTIMENT_LOG_DIR": str(tmp / "logs"),
           "SENTIMENT_RELOAD_CHECK_SECONDS": "0"}
    single = [body({"text": t}) for t in texts]
    batches = [body({"texts": texts[i:i + 256]}) for i in range(0, 1792, 256)]
    servers = {}
    try:
        servers = {"bare async def": bare("async_app", tmp / "async.log"), "bare def": bare("sync_app", tmp / "sync.log"),
                   "this service": serve(tmp, env, tmp / "this.log")}
        points = [("bare async def", "POST /predict", "/predict", single), ("bare def", "POST /predict", "/predict", single),
                  ("this service", "GET /health", "/health", None), ("this service", "POST /predict", "/predict", single),
                  ("this service", "POST /predict/batch 256", "/predict/batch", batches)]
        for name, _, path, bodies in points:
            if bodies: wrk(servers[name].url, path, bodies, 2, 16)  # (warm-up)
        results = {}
        for name, label, path, bodies in points:
            runs = [wrk(servers[name].url, path, bodies, a.seconds, 16) for _ in range(2)]
            results[name, label] = runs
        ceiling = statistics.mean(r["rps"] for r in results["bare async def", "POST /predict"])
        print(f"\nover HTTP, one uvicorn worker, wrk 16 connections, {a.seconds} s, twice each:")
        print(f"{'':<16}{'endpoint':<26}{'req/s':>16}{'p99':>20}{'of the ceiling':>16}")
        for (name, label), runs in results.items():
            rps = " / ".join(f"{r['rps']:.0f}" for r in runs)
            p99 = " / ".join(f"{r['p99']:.1f}" for r in runs)
            print(f"{name:<16}{label:<26}{rps:>16}{p99 + ' ms':>20}{statistics.mean(r['rps'] for r in runs) / ceiling:>16.0%}")
        predict = results["this service", "POST /predict"]
        rps = statistics.mean(r["rps"] for r in predict)
        print(f"\nPOST /predict: {1e6 / rps:.0f} µs of wall time per request; the model costs a text {one[-1][1] * 1e6:.0f} µs scored "
              f"alone and {sixteen / 16 * 1e6:.0f} µs in a micro-batch of 16 ({sixteen / 16 * rps:.0%} of the wall time at this rate)")
        b = statistics.mean(r["rps"] for r in results["this service", "POST /predict/batch 256"])
        print(f"POST /predict/batch 256: {1 / b * 1e3:.1f} ms a request, the model {batch_model * 1e3:.1f} ms of it "
              f"({batch_model * b:.0%}); {b * 256:.0f} texts/s")
        p99 = max(r["p99"] for r in predict)
        ok = rps >= 0.5 * ceiling and p99 <= 10
        print(f"bar: POST /predict >= 50 % of the bare async def ceiling ({rps / ceiling:.0%}), p99 <= 10 ms ({p99:.1f} ms): "
              f"{'PASS' if ok else 'FAIL'}")
    finally:
        for s in servers.values(): stop(s)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with recorded("request_path", "Where a request's time goes"): main()
