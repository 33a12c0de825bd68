"""Training on the real corpus, MLflow logging and registration, papermill runs, bad data."""
import os
import signal
import subprocess
import sys
import time

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import REPO, run_py
from sentiment_mlops.config import STAGING, Settings
from sentiment_mlops.training.evaluate import behavioural_checks
from sentiment_mlops.store import load_model
from sentiment_mlops.training.train import TrainParams, train


def registered_versions(s: Settings, name="SentimentAnalysisModel"):
    return [str(v.version) for v in MlflowClient(s.tracking_uri).search_model_versions(f"name='{name}'")]


@pytest.mark.slow
def test_default_training_meets_the_bar(settings, tmp_path, monkeypatch):
    "The default configuration on the full protocol: macro-F1 >= 0.775 in every surface form's bar, registered and staged (the fit's time is printed)."
    result = train(TrainParams(), settings)
    m, man = result.metrics, result.manifest
    print(f"\nfull corpus: macro-F1 {m['macro_f1']:.4f} accuracy {m['accuracy']:.4f} log-loss {m['log_loss']:.4f} "
          f"Brier {m['brier']:.4f} ECE {m['ece']:.4f} fit {m['fit_seconds']:.1f}s")
    assert (man["train_rows"], man["test_rows"]) == (29_794, 7_449)
    assert m["macro_f1"] >= 0.76
    assert m["ece"] <= 0.03
    assert (result.version, result.staged) == ("1", True)
    o = m["ood"]  # off the training domain, at least the VADER lexicon; the guard flags reviews, not tweets
    print(f"out-of-domain: macro-F1 {o['macro_f1']:.4f} (VADER {o['vader_macro_f1']:.4f}) ECE {o['ece']:.4f}; flagged off-domain: "
          f"held-out tweets {m['off_domain_share']:.1%}, reviews {o['off_domain_share']:.1%}")
    assert o["macro_f1"] >= o["vader_macro_f1"] and o["ece"] < 0.1
    assert m["off_domain_share"] <= 0.02 and o["off_domain_share"] >= 0.90
    surface = {f: (d["macro_f1"], d["off_domain_share"]) for f, d in m["surface"].items()}
    print(f"surface forms (macro-F1, flagged): {surface}")
    assert m["macro_f1"] >= 0.775 and surface["random handles"][0] >= 0.77 and surface["random handles"][1] <= 0.02
    assert surface["stripped"][0] >= 0.75 and surface["stripped"][1] <= 0.05
    assert m["surface"]["random handles"]["same_label"] == m["surface"]["other links"]["same_label"] == 1.0

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["dataset_sha256"] == man["data_sha256"]
    assert {"model", "seed", "test_size", "dataset_rows", "dataset_source"} <= set(run.data.params)
    assert {"macro_f1", "accuracy", "log_loss", "brier", "f1_positive", "recall_neutral", "off_domain_share",
            "ood_macro_f1", "ood_ece", "ood_vader_macro_f1", "ood_off_domain_share", "surface_stripped_macro_f1",
            "surface_random_handles_off_domain_share"} <= set(run.data.metrics)
    top = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"metrics.json", "slices.csv", "plots", "data"} <= top
    assert {"plots/confusion_matrix.png", "plots/pr_curves.png", "plots/calibration.png"} <= {
        a.path for a in client.list_artifacts(result.run_id, "plots")}
    v = client.get_model_version(settings.model_name, "1")
    assert v.tags["data_sha256"] == man["data_sha256"] and float(v.tags["macro_f1"]) == pytest.approx(m["macro_f1"], abs=1e-6)
    assert float(v.tags["ood_macro_f1"]) == pytest.approx(o["macro_f1"], abs=1e-6)
    assert str(client.get_model_version_by_alias(settings.model_name, STAGING).version) == "1"

    # MLflow's own loader, as another team would use it: no pickle, so no MLFLOW_ALLOW_PICKLE_DESERIALIZATION needed
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{STAGING}")
    out = model.predict(pd.DataFrame({"text": ["I love this airline, great crew!", "my flight is delayed again"]}))
    assert len(out) == 2
    assert list(out["label"]) == ["positive", "negative"]
    assert out[["p_negative", "p_neutral", "p_positive"]].sum(axis=1).round(6).tolist() == [1.0, 1.0] and out["error"].isna().all()
    plain = ["the crew was lovely", "the seats were comfortable", "my bag is lost", "great service, thanks", "the flight was delayed again"]
    assert model.predict(pd.DataFrame({"text": plain}))["in_domain"].tolist() == [True] * 5  # (the domain typed plainly is at home)
    checks = behavioural_checks(load_model(settings, f"models:/{settings.model_name}@{STAGING}").predictor)
    negated_positive = [c for c in checks if c["kind"] == "negation" and c["expect"] == "not positive"]
    assert negated_positive and all(c["passed"] for c in negated_positive), negated_positive
    # (the model reads "not bad" as negative: see 01e_evaluate, "Content, not handles"; the gate reports it)
    assert sum(not c["passed"] for c in checks) <= 1, [c for c in checks if not c["passed"]]


def test_cli_trains_registers_and_says_where(tmp_path):
    r = run_py(["-m", "sentiment_mlops.train", "--sample_size", "2000", "--min_macro_f1", "0.5",
                "--tracking_uri", f"sqlite:///{tmp_path}/mlflow.db"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "registered SentimentAnalysisModel version 1" in r.stdout
    assert "alias staging -> version 1" in r.stdout
    assert (tmp_path / "mlruns").is_dir()  # artifacts beside the database


def test_below_floor_is_registered_but_not_staged(settings):
    good = train(TrainParams(sample_size=2000), settings.model_copy(update={"min_macro_f1": 0.5}))
    toy = train(TrainParams(sample_size=2000, model="nb"), settings.model_copy(update={"min_macro_f1": 0.7}))
    assert good.staged and not toy.staged
    c = MlflowClient(settings.tracking_uri)
    assert str(c.get_model_version_by_alias(settings.model_name, STAGING).version) == good.version
    assert c.get_model_version(settings.model_name, toy.version).tags["quality_floor_passed"] == "false"


def papermill(tmp_path, *params):
    args = ["-m", "papermill", REPO / "nbs" / "02_train.ipynb", tmp_path / "out.ipynb", "--cwd", tmp_path]
    for k, v in params: args += ["-p", k, v]
    return run_py(args, cwd=tmp_path)


def test_papermill_runs_the_notebook_with_parameters(tmp_path):
    out = tmp_path / "out.ipynb"
    r = papermill(tmp_path, ("sample_size", "2000"), ("C", "1.0"), ("min_macro_f1", "0.5"),
                  ("tracking_uri", f"sqlite:///{tmp_path}/mlflow.db"), ("output_notebook", str(out)))
    assert r.returncode == 0, r.stderr[-3000:]
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert registered_versions(s) == ["1"]
    c = MlflowClient(s.tracking_uri)
    run_id = c.get_model_version(s.model_name, "1").tags["run_id"]
    assert c.get_run(run_id).data.params["C"] == "1.0"
    assert c.get_run(run_id).data.params["sample_size"] == "2000"
    assert [a.path for a in c.list_artifacts(run_id, "notebook")] == ["notebook/out.ipynb"]


@pytest.mark.parametrize("param,value,message", [
    ("modle", "lr", "unknown parameter(s) modle"),
    ("model", "xgboost", "Input should be 'domain_lr', 'lr' or 'nb'"),
    ("test_size", "1.5", "test_size"),
])
def test_papermill_refuses_bad_parameters(tmp_path, param, value, message):
    r = papermill(tmp_path, ("tracking_uri", f"sqlite:///{tmp_path}/mlflow.db"), (param, value))
    assert r.returncode != 0
    assert message in r.stderr + r.stdout
    assert not (tmp_path / "mlflow.db").exists()  # stopped before touching MLflow


CORRUPT = {
    "wrong_column.csv": (b"tweet,label\nhello,positive\n", "missing column(s) 'text'"),
    "unknown_label.csv": (b"text,label\ngreat,positive\nmeh,so-so\n", "row 2, column 'label': unknown label"),
    "empty_text.csv": (b"text,label\ngreat,positive\n   ,neutral\n", "row 2, column 'text': empty text"),
    "latin1.csv": ("text,label\ncaf\u00e9 cr\u00e8me,positive\n".encode("latin-1"), "not valid utf-8: byte b'\\xe9' at line 2"),
    "binary.csv": (bytes(range(256)) * 4, "not valid utf-8"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_data_fails_clearly_and_registers_nothing(tmp_path, name):
    data, message = CORRUPT[name]
    (tmp_path / name).write_bytes(data)
    r = run_py(["-m", "sentiment_mlops.train", "--data", tmp_path / name, "--tracking_uri", f"sqlite:///{tmp_path}/mlflow.db"],
               cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_sigterm_half_way_registers_nothing_and_moves_no_alias(settings, tmp_path):
    "A run killed while fitting leaves the registry exactly as it was (and its run, if any, not FINISHED)."
    first = train(TrainParams(sample_size=2000), settings.model_copy(update={"min_macro_f1": 0.5}))
    p = subprocess.Popen([sys.executable, "-m", "sentiment_mlops.train", "--sample_size", "30000", "--min_macro_f1", "0.5",
                          "--tracking_uri", settings.tracking_uri], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    seen, deadline = "", time.time() + 120
    while "fit domain_lr" not in seen and time.time() < deadline:
        seen += os.read(p.stderr.fileno(), 4096).decode(errors="replace")
    assert "fit domain_lr" in seen
    time.sleep(2)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) != 0
    c = MlflowClient(settings.tracking_uri)
    assert registered_versions(settings) == [first.version]
    assert str(c.get_model_version_by_alias(settings.model_name, STAGING).version) == first.version
    runs = c.search_runs([c.get_experiment_by_name(settings.experiment_name).experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]  # only the first run; the killed one never started logging
