"""Start-up to ready of `python -m sentiment_mlops.serve`: first start (downloads the model), restart with the
local cache, and restart with the tracking server unreachable. Bar: <= 5 s with a locally cached model.

    python benchmarks/startup.py [--tracking-uri URI] [--repeat 3]
"""
import argparse
import statistics
import tempfile
from pathlib import Path

from common import production_store, start_api, stop, recorded


def ready_seconds(env: dict, tmp: Path, name: str) -> float:
    server, t = start_api(env, tmp / f"{name}.log")
    stop(server)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri"); ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    uri = production_store(a.tracking_uri)
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache"), "SENTIMENT_LOG_DIR": str(tmp / "logs")}
    first = ready_seconds(env, tmp, "first")
    cached = [ready_seconds(env, tmp, f"cached{i}") for i in range(a.repeat)]
    down = [ready_seconds({**env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, tmp, f"down{i}") for i in range(a.repeat)]
    print(f"\nstart-up to /ready (median of {a.repeat}):")
    print(f"  first start, model downloaded from the registry  {first:5.1f} s")
    print(f"  restart, model in the local cache                {statistics.median(cached):5.1f} s   (runs: {', '.join(f'{x:.1f}' for x in cached)})")
    print(f"  restart, tracking server unreachable             {statistics.median(down):5.1f} s")
    print(f"bar: <= 5 s with a cached model: {'PASS' if statistics.median(cached) <= 5 else 'FAIL'}")


if __name__ == "__main__":
    with recorded("startup", "Start-up to ready"): main()
