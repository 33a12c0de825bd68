"""A user's mistake in any CLI is one line on stderr and exit status 2 — never a traceback."""
import pytest

from conftest import run_py

MISTAKES = [  # (what, arguments, words in the message)
    ("registry list on an empty store", ["-m", "sentiment_mlops.registry", "list"], "not found"),
    ("promote with no store", ["-m", "sentiment_mlops.registry", "promote", "--version", "7"], "no MLflow store at"),
    ("batch score with no store", ["-m", "sentiment_mlops.batch", "score", "--input", "in.csv", "--output", "out.parquet"],
     "there is no MLflow store at"),
    ("batch score a missing file", ["-m", "sentiment_mlops.batch", "score", "--input", "nothere.csv", "--output", "o.parquet",
                                    "--model_uri", "models:/SentimentAnalysisModel/1"], "nothere.csv"),
    ("monitor with a missing reference file", ["-m", "sentiment_mlops.monitor", "report", "--log", "logs", "--reference", "ref.json"], "ref.json"),
    ("train on a missing file", ["-m", "sentiment_mlops.train", "--data", "nothere.csv"], "nothere.csv"),
    ("train with a bad parameter", ["-m", "sentiment_mlops.train", "--C", "-1"], "C: Input should be greater than 0"),
]


@pytest.mark.parametrize("what,args,words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_user_mistake_is_one_line_and_exit_2(tmp_path, what, args, words):
    (tmp_path / "in.csv").write_text("text\nhello\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "predictions.jsonl").write_text(
        '{"ts": "2026-11-28T00:00:00.000Z", "request_id": "r", "item": 0, "model": "M", "version": "1", "label": "positive", '
        '"confidence": 0.9, "probabilities": {"positive": 0.9}, "text_length": 5, "oov_rate": 0.0}\n')
    r = run_py(args, tmp_path, {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
                                "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "cache")}, timeout=300)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(("load data", "gating", "20"))
             and "INFO" not in ln and "|" not in ln]
    print(f"\n{what}: exit {r.returncode}: {lines}")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
