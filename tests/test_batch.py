"""Batch scoring from the command line, chunked with pandas and on Spark local[2]; bad rows reported, not dropped."""
import pandas as pd
import pytest

from conftest import REPO, run_py
from sentiment_mlops.text import text_problem

EMPTY = text_problem("")  # the API's own rule and message (sentiment_mlops.text), which batch scoring applies too
TEXTS = ["great crew, thanks!", "", "my flight is delayed again", None, "x" * 20_000, "ok I guess", "the worst service"]


def env(s):
    return {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": str(s.model_cache_dir)}


@pytest.fixture
def inputs(tmp_path):
    df = pd.DataFrame({"id": range(len(TEXTS) * 300), "text": TEXTS * 300})
    df.to_parquet(tmp_path / "in.parquet")
    df.to_csv(tmp_path / "in.csv", index=False)
    return tmp_path, df


def check(out: pd.DataFrame, df: pd.DataFrame, version: str):
    out = out.sort_values("row").reset_index(drop=True)
    assert len(out) == len(df) and out["row"].tolist() == list(range(len(df)))  # one row per input row, in order
    bad = out["error"].notna()
    assert bad.sum() == 3 * 300 and out.loc[bad, "label"].isna().all()
    assert out.loc[~bad, "label"].isin(["negative", "neutral", "positive"]).all()
    assert (out.loc[~bad, "confidence"] > 0.33).all() and (out["model_version"] == version).all()
    assert set(out.loc[out["row"] % 7 == 1, "error"]) == {EMPTY}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_pandas_engine_streams_in_chunks(small_model, inputs, fmt):
    s, result = small_model
    tmp, df = inputs
    r = run_py(["-m", "sentiment_mlops.batch", "score", "--input", tmp / f"in.{fmt}", "--output", tmp / "out.parquet",
                "--chunk_rows", "500"], REPO, env(s))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "900 bad row(s)" in r.stderr and f"row 1: {EMPTY}" in r.stderr
    check(pd.read_parquet(tmp / "out.parquet"), df, result.version)


def test_missing_column_is_a_clear_error(small_model, inputs):
    s, _ = small_model
    tmp, _ = inputs
    r = run_py(["-m", "sentiment_mlops.batch", "score", "--input", tmp / "in.parquet", "--output", tmp / "o.parquet",
                "--column", "body"], REPO, env(s))
    assert r.returncode == 2 and "no column 'body'" in r.stderr and not (tmp / "o.parquet").exists()


@pytest.mark.slow
def test_spark_engine_on_local_2(small_model, inputs):
    s, result = small_model
    tmp, df = inputs
    r = run_py(["-m", "sentiment_mlops.batch", "score", "--input", tmp / "in.parquet", "--output", tmp / "spark-out",
                "--engine", "spark", "--master", "local[2]"], REPO, env(s), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    print("\n" + r.stdout)
    check(pd.read_parquet(tmp / "spark-out"), df, result.version)
