"""The container recipe and the workflows — linted, parsed, and the Dockerfile's own steps run in a fresh venv."""
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from servers import Server, free_port, wait_for

WORKFLOWS = REPO / ".github" / "workflows"


def test_hadolint_reports_nothing():
    r = subprocess.run(["hadolint", str(REPO / "Dockerfile")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_shape():
    text = (REPO / "Dockerfile").read_text()
    assert text.count("FROM python:3.11-slim") >= 2  # multi-stage, slim base
    assert re.search(r"^USER 10001", text, re.M)  # non-root
    assert "HEALTHCHECK" in text and "/ready" in text  # healthy means a model answers (not just a live process)
    assert re.search(r"chown app:app /app/logs", text)  # the log volume is writable by the app user
    assert 'CMD ["python", "-m", "sentiment_mlops.serve"]' in text
    assert '".[dev]"' not in text  # runtime dependencies only


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.y*ml")))
def test_workflows_parse(name):
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    assert wf["jobs"] and (True in wf or "on" in wf)  # (YAML 1.1 reads the key `on` as True)
    for job in wf["jobs"].values():
        assert job.get("steps") and "runs-on" in job


def test_release_flow_has_gated_production():
    wf = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    prod = wf["jobs"]["production"]
    assert prod["environment"] == "production" and prod["needs"] == "staging"
    runs = " ".join(s.get("run", "") for s in prod["steps"])
    assert "sentiment_mlops.registry promote --to production" in runs
    assert "production-$SHA" in runs and "prod-$SHA" in runs  # (the seed's release flow tagged prod-<sha> too)
    assert "main-${{ env.SHA }}" in str(wf["jobs"]["image"]["steps"])
    trigger = wf[True]["workflow_run"]  # images are built only after the tests passed, from the commit they tested
    assert trigger["workflows"] == ["lint and test"] and "success" in wf["jobs"]["image"]["if"]
    assert wf["env"]["SHA"] == "${{ github.event.workflow_run.head_sha }}"


def test_compose_file_parses():
    c = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert {"db", "mlflow", "api"} <= set(c["services"])
    assert "postgresql+psycopg2://" in c["services"]["mlflow"]["command"]


def test_compose_keeps_mlflow_private_and_passwords_out_of_the_repository():
    "The unauthenticated MLflow server is not published on every interface, and no password is committed."
    text = (REPO / "docker-compose.yml").read_text()
    c = yaml.safe_load(text)
    assert all(str(p).startswith("127.0.0.1:") for p in c["services"]["mlflow"].get("ports", []))
    assert c["services"]["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "mlflow:mlflow@" not in text and "POSTGRES_PASSWORD: mlflow" not in text
    assert ".env" in (REPO / ".gitignore").read_text().split() and (REPO / ".env.example").exists()


def test_third_party_actions_are_pinned_by_commit():
    "Every `uses:` of another owner's action names a full commit SHA, not a movable tag or branch."
    loose = [f"{wf.name}: {m[1]}" for wf in WORKFLOWS.glob("*.y*ml")
             for m in re.finditer(r"uses:\s*([\w./-]+@[\w.-]+)", wf.read_text()) if not re.search(r"@[0-9a-f]{40}$", m[1])]
    assert not loose, loose
    docs = yaml.safe_load((WORKFLOWS / "deploy-docs.yaml").read_text())
    assert docs["permissions"] == {"contents": "write"}  # pushes the built site to gh-pages: nothing more


@pytest.mark.slow
def test_the_dockerfile_steps_work_in_a_fresh_venv(small_model, tmp_path):
    "The image's `pip install -c constraints.txt .` (no dev extras) and its CMD, in a new virtual environment."
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), str(REPO)],
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    assert subprocess.run([str(py), "-c", "import pytest"], capture_output=True).returncode != 0  # no dev tools
    s, result = small_model
    port = free_port()
    env = {"SENTIMENT_HOST": "127.0.0.1", "SENTIMENT_PORT": str(port), "MLFLOW_TRACKING_URI": s.tracking_uri,
           "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "models"), "SENTIMENT_LOG_DIR": str(tmp_path / "logs"),
           "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    cmd = re.search(r'^CMD (\[.*\])$', (REPO / "Dockerfile").read_text(), re.M)[1]
    import json
    argv = json.loads(cmd)
    log = tmp_path / "cmd.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(venv / "bin" / argv[0]), *argv[1:]], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(server.url + "/ready", proc=proc, timeout=120)
        assert server.post("/predict", json={"text": "great crew, thanks"}).json()["model"]["version"] == result.version
        hc = re.search(r'CMD \["python", "-c", "(.*)"\]\n', (REPO / "Dockerfile").read_text())[1].replace("8000", str(port))
        assert subprocess.run([str(py), "-c", hc], timeout=30).returncode == 0  # the HEALTHCHECK command
    finally:
        server.stop()
