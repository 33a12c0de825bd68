"""The Kubernetes manifests (deploy/k8s): every overlay renders with kustomize and every object validates against the Kubernetes
schemas offline; the API's probes, security context and resources are what the service needs; the PrometheusRule is the
alerting rules file, checked by promtool. No cluster runs here."""
import runpy
import subprocess

import kubernetes_validate
import pytest
import yaml

from conftest import REPO

K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("staging", "production")


def render(overlay: str) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, (kind, [o["metadata"]["name"] for o in found])
    return found[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_and_validates_offline(overlay):
    objects = render(overlay)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(["ConfigMap", "Service", "PersistentVolumeClaim", "Deployment", "HorizontalPodAutoscaler",
                            "PodDisruptionBudget", "CronJob", "CronJob", "PrometheusRule"]), kinds
    for o in objects:
        assert o["metadata"]["namespace"] == f"sentiment-{overlay}"
        if o["kind"] == "PrometheusRule": continue  # (a custom resource: checked with promtool below)
        kubernetes_validate.validate(o, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_is_probed_limited_and_unprivileged(overlay):
    objects = render(overlay)
    deploy, config = one(objects, "Deployment"), one(objects, "ConfigMap")
    pod = deploy["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    assert api["startupProbe"]["httpGet"]["path"] == "/ready" and api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= set(api["resources"]["requests"]) and "memory" in api["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    sc = api["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m for m in api["volumeMounts"]}
    data = config["data"]
    # everything the service writes is on a volume: the log (a directory per pod), the model cache, /tmp
    assert mounts[data["SENTIMENT_LOG_DIR"]]["subPathExpr"] == "logs/$(POD_NAME)" and data["SENTIMENT_MODEL_CACHE_DIR"] in mounts
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in api["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"SENTIMENT_ADMIN_TOKEN", "SENTIMENT_LOG_HASH_KEY"} <= set(secrets)
    assert api["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]  # (kustomize's hashed name, rolled on change)
    alias = data["SENTIMENT_MODEL_URI"].rsplit("@", 1)[1]
    assert alias == ("staging" if overlay == "staging" else "production")
    # and the settings the service reads from the ConfigMap are valid settings
    from sentiment_mlops.config import Settings
    Settings(**{k.removeprefix("SENTIMENT_").lower(): v for k, v in data.items() if k.startswith("SENTIMENT_")})
    hpa, pdb = one(objects, "HorizontalPodAutoscaler"), one(objects, "PodDisruptionBudget")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"] and hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]


def test_the_prometheus_rule_is_the_alerting_rules_file(tmp_path):
    render_rule = runpy.run_path(str(REPO / "scripts" / "prometheusrule.py"))["render"]
    assert (K8S / "base" / "prometheusrule.yaml").read_text() == render_rule(), "run python scripts/prometheusrule.py"
    rule = one(render("production"), "PrometheusRule")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_training_runs_on_demand_from_the_training_image_unprivileged(overlay):
    objects = render(overlay)
    (train,) = [o for o in objects if o["kind"] == "CronJob" and o["metadata"]["name"] == "sentiment-train"]
    assert train["spec"]["suspend"]  # (kubectl create job --from=cronjob/sentiment-train … runs it)
    pod = train["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"].endswith("sentiment_mlops-train:latest") and c["command"] == ["python", "-m", "sentiment_mlops.train"]
    assert pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert c["envFrom"] == [{"configMapRef": {"name": one(objects, "ConfigMap")["metadata"]["name"]}}]  # the same tracking server
