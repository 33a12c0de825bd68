"""What tracing costs: the same server with tracing off, on as configured by default (a caller's sampled trace always
continued, 1 % of the traces the service starts itself kept), and on for every request (`parentbased_always_on`); spans
exported over OTLP/HTTP to a local collector stand-in; single-text requests at 16 clients, the three taking turns.
Bar: with tracing on (default sampling), p99 grows by at most 10 %. Tracing every request is measured and shown, not barred.

    python benchmarks/tracing_cost.py [--tracking-uri URI] [--seconds 10] [--rounds 3]
"""
import argparse
import http.server
import statistics
import tempfile
import threading
from pathlib import Path

from common import body, production_store, recorded, start_api, stop, test_texts, wrk


class Collector(http.server.BaseHTTPRequestHandler):
    "An OTLP/HTTP endpoint that takes every export and counts it (a stand-in for a collector)."
    received = 0
    def do_POST(self):
        Collector.received += int(self.headers.get("content-length", 0)); self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/x-protobuf"); self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args): pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri"); ap.add_argument("--seconds", type=int, default=10); ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--otel", action="append", default=[], metavar="NAME=VALUE", help="another OTEL_* variable for the traced server")
    a = ap.parse_args()
    uri, texts = production_store(a.tracking_uri), test_texts()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tracing-"))
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    base = {"MLFLOW_TRACKING_URI": uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp / "cache"), "SENTIMENT_LOG_DIR": str(tmp / "logs")}
    traced = {**base, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{collector.server_port}/v1/traces",
              **dict(v.split("=", 1) for v in a.otel)}
    every = {**traced, "OTEL_TRACES_SAMPLER": "parentbased_always_on"}
    servers = {}
    for name, env in (("off", base), ("on", traced), ("every", every)):
        servers[name], _ = start_api(env, tmp / f"{name}.log")
    try:
        bodies = [body({"text": t}) for t in texts]
        for s in servers.values(): wrk(s.url, "/predict", bodies, 3, 16)  # warm up
        runs = {name: [] for name in servers}
        for _ in range(a.rounds):
            for name, s in servers.items(): runs[name].append(wrk(s.url, "/predict", bodies, a.seconds, 16))
        med = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")} for n, rs in runs.items()}
        print(f"single text, 16 clients, wrk {a.seconds} s, median of {a.rounds} alternating rounds; "
              f"{Collector.received / 2**20:.1f} MiB of spans exported")
        labels = {"off": "tracing off", "on": "on, default sampling", "every": "on, every request"}
        for name in servers:
            print(f"  {labels[name]:<21} {med[name]['rps']:6.0f} req/s  p50 {med[name]['p50']:6.2f} ms  p99 {med[name]['p99']:6.2f} ms  "
                  "(rounds p99: " + ", ".join(f"{r['p99']:.1f}" for r in runs[name]) + ")")
        every_growth = med["every"]["p99"] / med["off"]["p99"] - 1
        print(f"tracing every request: p99 {every_growth:+.1%}, req/s {med['every']['rps'] / med['off']['rps'] - 1:+.1%} (shown, not barred)")
        growth = med["on"]["p99"] / med["off"]["p99"] - 1
        print(f"bar: p99 grows by at most 10 % with tracing on (default sampling): {growth:+.1%} — {'PASS' if growth <= 0.10 else 'FAIL'}")
    finally:
        for s in servers.values(): stop(s)
        collector.shutdown()


if __name__ == "__main__":
    with recorded("tracing_cost", "What tracing costs"): main()
