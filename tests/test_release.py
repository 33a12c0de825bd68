"""The container recipe and the workflows, linted and parsed (the images themselves are built and run in test_container.py)."""
import re
import subprocess

import pytest
import yaml

from conftest import REPO

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
