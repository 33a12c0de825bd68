"""The images, built and run for real: the runtime image serves a mounted store as uid 10001 on a read-only root filesystem
and turns healthy by its own HEALTHCHECK; the baked variant answers with networking off; the training image trains and
registers from a mounted clone as the clone's owner. Sizes and build times are printed."""
import os
import shutil
import sqlite3
import subprocess
import time

import httpx
import pytest
import yaml

from conftest import REPO
from containers import CA_BUNDLE, LIMITS, PODMAN, build, engine, inspect, run, size_mb, start
from servers import free_port, wait_for, wait_until
from sentiment_mlops.config import sqlite_path

pytestmark = pytest.mark.slow
RUNTIME, TRAIN, BASE = "localhost/sentiment-mlops:test", "localhost/sentiment-mlops-train:test", "docker.io/library/python:3.11-slim"
APP_UID = 10001


@pytest.fixture(scope="module")
def runtime_image():
    seconds = build(RUNTIME)
    added = size_mb(RUNTIME) - size_mb(BASE)
    print(f"\nruntime image: built in {seconds:.0f} s, {size_mb(RUNTIME):.0f} MB ({added:.0f} MB over the {size_mb(BASE):.0f} MB base)")
    return added


def healthy(name: str) -> str:
    "Run the image's HEALTHCHECK now (podman runs it on demand) and read the state the engine records."
    if PODMAN: engine("healthcheck", "run", name, check=False)
    state = inspect(name)["State"]
    return (state.get("Health") or state.get("Healthcheck") or {}).get("Status")


def test_runtime_image_adds_under_500_mb_to_its_base(runtime_image):
    assert runtime_image < 500


def test_runtime_image_carries_the_service_only(runtime_image):
    r = run(RUNTIME, "python", "-c", "import importlib.util as u; print([m for m in ('sklearn', 'matplotlib', 'pandera', 'skops', "
            "'pytest', 'pip') if u.find_spec(m)])")
    assert r.stdout.strip() == "[]"


def test_runtime_image_serves_a_mounted_store_as_the_app_user_on_a_read_only_root(runtime_image, small_model, tmp_path):
    s, result = small_model
    store = sqlite_path(s.tracking_uri).parent
    subprocess.run(["chmod", "-R", "o+rX", store], check=True)  # (the app user reads the store, as from a shared volume)
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o700)
    os.chown(logs, APP_UID, APP_UID)
    port = free_port()
    name = start(RUNTIME, f"sentiment-test-{port}", options=[
        "--read-only", "-p", f"127.0.0.1:{port}:8000", "-v", f"{store}:{store}", "-v", f"{logs}:/app/logs",
        "-e", f"MLFLOW_TRACKING_URI={s.tracking_uri}", "-e", "SENTIMENT_MODEL_CACHE_DIR=/tmp/models",
        "-e", "SENTIMENT_LOG_PRIVACY=full", "-e", "SENTIMENT_MONITOR_CACHE_SECONDS=0"])
    try:
        wait_for(f"http://127.0.0.1:{port}/ready", timeout=120)
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"text": "great crew, thanks"}, timeout=30)
        assert r.status_code == 200 and r.json()["model"]["version"] == result.version
        assert engine("exec", name, "id", "-u").stdout.strip() == str(APP_UID)
        assert healthy(name) == "healthy"
        for outside in ("/app/x", "/opt/venv/x", "/opt/models/x"):
            denied = engine("exec", name, "touch", outside, check=False)
            assert denied.returncode != 0 and "Read-only file system" in denied.stderr, outside
        assert engine("exec", name, "touch", "/app/logs/x").returncode == 0  # the log directory is the one writable place
        wait = time.time() + 10
        while not (logs / "predictions.jsonl").exists() and time.time() < wait: time.sleep(0.2)
        assert (logs / "predictions.jsonl").stat().st_uid == APP_UID
        texts = [f"flight {i} was {'great' if i % 2 else 'delayed again'}" for i in range(60)]
        assert httpx.post(f"http://127.0.0.1:{port}/predict/batch", json={"texts": texts}, timeout=30).status_code == 200
        drift = wait_until(lambda: (d := httpx.get(f"http://127.0.0.1:{port}/monitoring/drift", timeout=30).json())["window"] >= 61 and d)
        assert "text_content: needs scikit-learn" in drift["skipped"][0]  # (the one test that needs the training stack says so)
        page = httpx.get(f"http://127.0.0.1:{port}/monitoring/report", timeout=30)
        assert page.status_code == 200 and "matplotlib is not installed in this runtime" in page.text
    finally:
        engine("rm", "-f", name, check=False)


def test_baked_image_answers_with_networking_off(runtime_image, small_model):
    s, result = small_model
    store = sqlite_path(s.tracking_uri).parent
    if not PODMAN: pytest.skip("baking from a SQLite store mounts it into the build, which only podman can (Docker: a tracking server)")
    seconds = build(RUNTIME + "-baked", build_args={"BAKE_MODEL_FROM": s.tracking_uri}, volumes=[f"{store}:{store}:ro"])
    print(f"\nbaked image: built in {seconds:.0f} s, {size_mb(RUNTIME + '-baked'):.0f} MB")
    name = start(RUNTIME + "-baked", "sentiment-test-baked", options=["--network", "none", "--read-only", "--tmpfs", "/app/logs"])
    ask = ("import json, time, urllib.request as u\n"
           "for _ in range(240):\n"
           "    try: u.urlopen('http://127.0.0.1:8000/ready', timeout=2); break\n"
           "    except Exception: time.sleep(0.5)\n"
           "req = u.Request('http://127.0.0.1:8000/predict', data=b'{\"text\": \"great crew\"}', headers={'content-type': 'application/json'})\n"
           "print(json.load(u.urlopen(req, timeout=30))['model']['version'])")
    try:
        assert engine("exec", name, "python", "-c", ask, timeout=180).stdout.strip() == result.version
        assert engine("exec", name, "python", "-c", "import socket; socket.create_connection(('pypi.org', 443), timeout=3)",
                      check=False).returncode != 0  # no network indeed
    finally:
        engine("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def train_image():
    seconds = build(TRAIN, target="train")
    print(f"\ntraining image: built in {seconds:.0f} s, {size_mb(TRAIN):.0f} MB")


@pytest.fixture
def clone(tmp_path):
    "A clean clone of this repository owned by an ordinary user (uid 1000), as a developer's checkout would be."
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    subprocess.run(["chown", "-R", "1000:1000", str(dest)], check=True)
    return dest


def versions(store) -> list[tuple[str, str]]:
    with sqlite3.connect(store) as db:
        return db.execute("select name, version from model_versions order by version").fetchall()


def test_training_image_trains_and_registers_from_a_mounted_clone_as_its_owner(train_image, clone):
    mount = ["-v", f"{clone}:/app", "-v", f"{CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro",  # (this machine's proxy CA: the guard's
             "-e", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt"]                                # background set comes from PyPI)
    run(TRAIN, "python", "-m", "sentiment_mlops.train", "--sample_size", "3000", "--min_macro_f1", "0.5", "--no-ood",
        options=mount, timeout=1200)
    run(TRAIN, "papermill", "nbs/02_train.ipynb", "/tmp/out.ipynb", "-p", "sample_size", "3000", "-p", "min_macro_f1", "0.5",
        "-p", "ood", "False", "--cwd", "nbs", options=mount, timeout=1200)
    assert versions(clone / "mlflow.db") == [("SentimentAnalysisModel", 1), ("SentimentAnalysisModel", 2)]
    written = [clone / "mlflow.db", *(clone / "mlruns").rglob("*")]
    assert written and {(p.stat().st_uid, p.stat().st_gid) for p in written} == {(1000, 1000)}


def test_training_image_refuses_to_run_as_root(train_image, tmp_path):
    r = run(TRAIN, "python", "-m", "sentiment_mlops.train", options=["-v", f"{tmp_path}:/app"], check=False, timeout=120)
    assert r.returncode == 2 and "owned by root" in r.stderr
    assert not os.listdir(tmp_path)


def compose(project, *args, timeout=1200) -> subprocess.CompletedProcess:
    "podman-compose on the project's docker-compose.yml and the test's override (no pods: each service its own container)."
    cmd = ["podman-compose", "--in-pod", "false", "--podman-args", "--runtime runc", "--podman-run-args", " ".join(LIMITS),
           "--profile", "train", "-f", "docker-compose.yml", "-f", "compose.test.yml", *args]  # (podman-compose runs a profiled service
                                                                                               # only with its profile on)
    r = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_compose_trains_with_its_train_service_and_serves_that_model_with_its_api(runtime_image, train_image, clone):
    """The project's compose file, with an override that puts the store in the project directory (SQLite) instead of the
    PostgreSQL-backed MLflow server, whose images cannot be pulled here (tests/test_e2e_postgres.py runs that setup without
    containers). The images are the ones built above."""
    if not PODMAN: pytest.skip("runs podman-compose")
    shutil.copy(clone / ".env.example", clone / ".env")
    port = free_port()
    ca = [f"{CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
    (clone / "compose.test.yml").write_text(yaml.safe_dump({"services": {
        "train": {"image": TRAIN, "environment": {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",
                                                  "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}, "volumes": [".:/app", *ca]},
        "api": {"image": RUNTIME, "environment": {"MLFLOW_TRACKING_URI": "sqlite:////app/mlflow.db", "SENTIMENT_WORKERS": "1",
                                                  "SENTIMENT_MODEL_URI": "models:/SentimentAnalysisModel@staging"},
                "volumes": [".:/app"], "ports": [f"127.0.0.1:{port}:8000"]}}}))
    compose(clone, "run", "--rm", "--no-deps", "train", "python", "-m", "sentiment_mlops.train", "--sample_size", "3000",
            "--min_macro_f1", "0.5", "--no-ood")
    assert versions(clone / "mlflow.db") == [("SentimentAnalysisModel", 1)] and (clone / "mlflow.db").stat().st_uid == 1000
    try:
        compose(clone, "up", "-d", "--no-deps", "--no-build", "api")
        wait_for(f"http://127.0.0.1:{port}/ready", timeout=120)
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"text": "great crew, thanks"}, timeout=30)
        assert r.status_code == 200 and r.json()["model"]["version"] == "1"
    finally:
        compose(clone, "down", "-v", timeout=300)
