"""Shared fixtures: real MLflow stores in temporary directories, real subprocesses, real files."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_py(args, cwd, env=None, timeout=900, **kw) -> subprocess.CompletedProcess:
    "Run `python <args>` in a subprocess and capture its output."
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture
def settings(tmp_path):
    "Settings on a throw-away SQLite store (artifacts beside it), cache and log directories."
    from sentiment_mlops.config import Settings
    return Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", model_cache_dir=tmp_path / "cache",
                    log_dir=tmp_path / "logs")


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    "A store with one small model (3,000-row sample) registered, staged and promoted to production."
    return production_model(tmp_path_factory.mktemp("small_model"), 3000)


def production_model(tmp: Path, sample_size: int):
    "`(settings, result)`: a store in `tmp` whose production alias is a model trained on `sample_size` rows."
    from mlflow import MlflowClient
    from sentiment_mlops.config import PRODUCTION, Settings
    from sentiment_mlops.training.train import TrainParams, train
    s = Settings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", model_cache_dir=tmp / "cache", log_dir=tmp / "logs",
                 min_macro_f1=0.5)
    result = train(TrainParams(sample_size=sample_size), s)
    MlflowClient(s.tracking_uri).set_registered_model_alias(s.model_name, PRODUCTION, result.version)
    return s, result


CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    "A real headless Chromium (Debian's), driven by Playwright."
    from playwright.sync_api import sync_playwright
    assert os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}: run scripts/system-deps.sh (or set CHROMIUM_PATH)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()
