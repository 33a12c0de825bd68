"""Real servers for tests: the API (`python -m sentiment_mlops.serve`) and an MLflow tracking server, on 127.0.0.1."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, status=(200,), timeout=60, proc=None) -> httpx.Response:
    t0 = time.time()
    while True:
        if proc is not None and proc.poll() is not None: raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code in status: return r
        except httpx.HTTPError: pass
        if time.time() - t0 > timeout: raise TimeoutError(f"{url} not answering {status} after {timeout}s")
        time.sleep(0.1)


def api_env(s, tmp_path: Path, **extra) -> dict:
    "Environment of a test API on settings `s`'s store: its own cache and log directories, no alias following."
    return {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": tmp_path / "cache",
            "SENTIMENT_LOG_DIR": tmp_path / "logs", "SENTIMENT_RELOAD_CHECK_SECONDS": "0", **extra}


def metric(text: str, sample: str, /, **labels) -> float:
    "Value of the Prometheus `sample` with exactly `labels` (0 when absent); with no labels, the sum over all label sets."
    want = {k: str(v) for k, v in labels.items()}
    return sum(float(m[2]) for m in re.finditer(rf"^{sample}(?:\{{(.*?)\}})? (\S+)$", text, re.M)
               if not labels or dict(re.findall(r'(\w+)="([^"]*)"', m[1] or "")) == want)


def first_ready(url: str, timeout: float = 120) -> float:
    "Poll `/ready` every 10 ms; the time it first answered 200."
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200: return time.monotonic()
        except httpx.HTTPError: pass
        time.sleep(0.01)
    raise TimeoutError(f"{url} never ready")


def wait_until(fn, timeout: float = 30, every: float = 0.2):
    "Poll `fn` until it returns something truthy; return that."
    t0 = time.time()
    while time.time() - t0 < timeout:
        if got := fn(): return got
        time.sleep(every)
    raise TimeoutError(f"condition not met in {timeout}s")


def every_worker_answers(url: str) -> bool:
    "Whether 20 new connections in a row all get 200 from `url` (the workers are handed connections by a hash, so each is asked)."
    try: return all(httpx.get(url, timeout=5).status_code == 200 for _ in range(20))
    except httpx.HTTPError: return False  # (a worker still starting, or being replaced)


class Server:
    "A running subprocess serving HTTP at `url`; its output goes to `log`."
    def __init__(self, proc, url, log: Path): self.proc, self.url, self.log = proc, url, log
    def output(self) -> str: return self.log.read_text(errors="replace")
    def get(self, path, **kw): return httpx.get(self.url + path, timeout=30, **kw)
    def post(self, path, **kw): return httpx.post(self.url + path, timeout=30, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try: self.proc.wait(timeout)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        return self.proc.returncode


@contextmanager
def api_server(tmp_path: Path, env: dict, args=(), wait="/health", name="api"):
    "Run `python -m sentiment_mlops.serve` with `env` on a free port; yields a `Server`, stops it with SIGTERM."
    port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / f"{name}-{port}.log"
    full_env = {**os.environ, "SENTIMENT_HOST": "127.0.0.1", "SENTIMENT_PORT": str(port), **{k: str(v) for k, v in env.items()}}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sentiment_mlops.serve", *map(str, args)], env=full_env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        if wait: wait_for(server.url + wait, proc=proc)
        if wait and "--workers" in map(str, args):  # each worker is ready on its own: see every one answer
            wait_until(lambda: every_worker_answers(server.url + wait), timeout=120)
        yield server
    finally:
        server.stop()


@contextmanager
def mlflow_server(tmp_path: Path, backend_uri: str | None = None, port: int | None = None, name="mlflow"):
    "Run `mlflow server` (SQLite backend in `tmp_path` unless given) with proxied artifacts; yields a `Server`."
    port = port or free_port()
    backend_uri = backend_uri or f"sqlite:///{tmp_path}/server.db"
    log = tmp_path / f"{name}-{port}.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1", "--backend-store-uri", backend_uri,
                                 "--artifacts-destination", str(tmp_path / "server-artifacts"),
                                 "--allowed-hosts", f"127.0.0.1:{port},localhost:{port}"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(server.url + "/health", proc=proc, timeout=90)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try: proc.wait(30)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()


WRK_SCRIPT = r"""
local bodies, n, i = {}, 0, 0
for line in io.lines("%s") do n = n + 1; bodies[n] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%s
request = function() i = i %% n + 1; return wrk.format(nil, "%s", nil, bodies[i]) end
"""


def wrk(url: str, path: str, bodies: list[str] | None, seconds=10, connections=16, threads=2, headers: dict | None = None) -> dict:
    """Run wrk against `url+path`, POSTing `bodies` in turn (with `headers`), or GETs when `bodies` is `None`; requests/s, latency
    percentiles (ms), errors."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if bodies is None: args.append(url + path)
    else:
        d = Path(tempfile.mkdtemp(prefix="wrk-"))
        (d / "bodies.txt").write_text("\n".join(bodies) + "\n")
        extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
        (d / "script.lua").write_text(WRK_SCRIPT % (d / "bodies.txt", extra, path))
        args += ["-s", str(d / "script.lua"), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    pct = {m[1]: float(m[2]) * unit[m[3]] for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": rps, "p50": pct.get("50"), "p99": pct.get("99"), "non2xx": int(non2xx[1]) if non2xx else 0,
            "socket_errors": sum(map(int, sock.groups())) if sock else 0, "raw": out}
