"""The registered model works outside this repository — in a fresh virtual environment made only from the
model's own requirements.txt, with MLflow's own loader, without pickle."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

PREDICT = """
import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model("models:/SentimentAnalysisModel@staging")
out = model.predict(pd.DataFrame({"text": ["I love this airline, the crew was wonderful!", "my flight is delayed again", ""]}))
try:
    import sentiment_mlops  # noqa: F401
    installed = True
except ImportError: installed = False
print(json.dumps({"columns": list(out.columns), "rows": out.astype(object).where(out.notna(), None).to_dict("records"),
                  "sentiment_mlops_installed": installed}))
"""


@pytest.mark.slow
def test_the_registered_model_predicts_in_a_fresh_venv_from_its_own_requirements(small_model, tmp_path):
    s, result = small_model
    client = MlflowClient(s.tracking_uri)
    mv = client.get_model_version_by_alias(s.model_name, "staging")
    local = mlflow.artifacts.download_artifacts(artifact_uri=client.get_model_version_download_uri(s.model_name, mv.version),
                                                dst_path=str(tmp_path / "model"), tracking_uri=s.tracking_uri)
    requirements = Path(local) / "requirements.txt"
    print(f"\nthe model's requirements.txt:\n{requirements.read_text()}")
    assert "sentiment_mlops" not in requirements.read_text() and "scikit-learn" not in requirements.read_text()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
                         capture_output=True, text=True, timeout=1500)
    assert pip.returncode == 0, pip.stderr[-3000:]
    run = subprocess.run([str(venv / "bin" / "python"), "-c", PREDICT, s.tracking_uri], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"fresh venv, MLflow's own loader: {got}")
    assert got["sentiment_mlops_installed"] is False  # the model carried its own code
    assert got["columns"] == ["label", "confidence", "p_negative", "p_neutral", "p_positive", "in_domain", "domain_score", "error"]
    first, second, empty = got["rows"]
    assert (first["label"], second["label"], empty["label"]) == ("positive", "negative", None)
    assert abs(first["p_negative"] + first["p_neutral"] + first["p_positive"] - 1) < 1e-9 and first["error"] is None
    assert empty["error"] == "text is empty: it has no visible characters"
    assert (first["in_domain"], empty["in_domain"]) == (True, None)  # the guard (VADER inside) runs from the model's own requirements


@pytest.mark.slow
def test_mlflow_models_serve_builds_the_models_own_environment(small_model, tmp_path):
    "`mlflow models serve --env-manager virtualenv` — MLflow builds the environment from the model and serves it."
    from servers import free_port, wait_for
    s, _ = small_model
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/SentimentAnalysisModel@staging",
                                 "--env-manager", "virtualenv", "-h", "127.0.0.1", "-p", str(port)],
                                env={**os.environ, "MLFLOW_TRACKING_URI": s.tracking_uri}, stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp_path, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", timeout=600, proc=proc)
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": [{"text": "great crew, thanks"}, {"text": ""}]},
                       timeout=60)
        got = r.json()["predictions"]
        print(f"\nmlflow models serve --env-manager virtualenv: {got}")
        assert r.status_code == 200 and got[0]["label"] == "positive" and got[0]["error"] is None
        assert got[1]["label"] is None and got[1]["error"] == "text is empty: it has no visible characters"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
