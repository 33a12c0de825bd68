"""What `explain` costs: nothing when it is absent, and what it costs when it is asked for.

Two servers on the same registered model, one worker each, measured in turns (this machine's speed drifts between
minutes, so only ratios within a round count): this checkout, and the commit before explanations existed (checked out
in a git worktree). wrk sends single texts to /predict — held-out tweets, 16 connections — to both, round after round;
then this checkout alone with `"explain": true`, and batches of 64 with and without it.
Bar: without `explain`, this checkout's median throughput over the rounds is within 3 % of the base's.

    python benchmarks/explain_cost.py [--tracking-uri URI] [--base REF] [--rounds 6] [--seconds 10]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, body, production_store, recorded, stop, test_texts
from servers import Server, free_port, wait_for, wrk


def base_ref() -> str:
    "The commit before the one that added explanations (this checkout's HEAD while they are uncommitted)."
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "sentiment_mlops/explain.py"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    return f"{added[-1]}^" if added else "HEAD"


def serve(cwd: Path, env: dict, log: Path) -> Server:
    "`python -m sentiment_mlops.serve` run from `cwd` (the package there is the one imported), ready to answer."
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sentiment_mlops.serve", "--port", str(port), "--workers", "1"], cwd=cwd,
                                env={**os.environ, **env, "SENTIMENT_HOST": "127.0.0.1"}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    wait_for(server.url + "/ready", proc=proc, timeout=180)
    return server


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri")
    ap.add_argument("--base", help="git ref of the code to compare with (default: the commit before explanations)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    uri, tmp = production_store(a.tracking_uri), Path(tempfile.mkdtemp(prefix="explain-cost-"))
    ref = a.base or base_ref()
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "worktree", "add", "--detach", tmp / "base", ref], cwd=REPO, capture_output=True, check=True)
    texts = test_texts(2000)
    single, explained = [body({"text": t}) for t in texts], [body({"text": t, "explain": True}) for t in texts]
    env = lambda name: {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / name / "cache"),
                        "SENTIMENT_LOG_DIR": str(tmp / name / "logs"), "SENTIMENT_RELOAD_CHECK_SECONDS": "0"}
    servers = {}
    try:
        servers = {"base": serve(tmp / "base", env("base"), tmp / "base.log"), "this": serve(REPO, env("this"), tmp / "this.log")}
        run = lambda name, bodies, path="/predict": wrk(servers[name].url, path, bodies, a.seconds, 16)
        for name in servers: run(name, single)  # (warm-up)
        ratios = []
        print(f"base {sha} against this checkout, /predict single texts, 16 connections, {a.seconds} s each")
        for k in range(a.rounds):
            base, this = run("base", single), run("this", single)
            ratios.append(this["rps"] / base["rps"])
            print(f"round {k + 1}: base {base['rps']:8.0f} req/s (p99 {base['p99']:.1f} ms)   this {this['rps']:8.0f} req/s "
                  f"(p99 {this['p99']:.1f} ms)   ratio {ratios[-1]:.3f}")
        plain, asked = run("this", single), run("this", explained)
        print(f"this checkout, /predict: without explain {plain['rps']:.0f} req/s (p99 {plain['p99']:.1f} ms); "
              f"with explain {asked['rps']:.0f} req/s (p99 {asked['p99']:.1f} ms), {asked['non2xx']} non-2xx")
        batches = [body({"texts": texts[i:i + 64]}) for i in range(0, 1920, 64)]
        batches_x = [body({"texts": texts[i:i + 64], "explain": True}) for i in range(0, 1920, 64)]
        b, bx = run("this", batches, "/predict/batch"), run("this", batches_x, "/predict/batch")
        print(f"this checkout, /predict/batch of 64: without explain {b['rps'] * 64:.0f} texts/s; with explain {bx['rps'] * 64:.0f} texts/s")
        median = statistics.median(ratios)
        print(f"median ratio without explain, this / base: {median:.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
        print(f"bar: within 3 % of the base: {'PASS' if median >= 0.97 else 'FAIL'}")
    finally:
        for s in servers.values(): stop(s)
        subprocess.run(["git", "worktree", "remove", "--force", tmp / "base"], cwd=REPO, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    with recorded("explain_cost", "What explanations cost: nothing when absent"): main()
