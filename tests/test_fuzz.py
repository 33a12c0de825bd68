"""Bad input — schemathesis against the app's own OpenAPI schema, and hand-written hostile requests."""
import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from servers import api_env, api_server

EXAMPLES = 150  # at most, per operation and generation mode (GET operations without parameters yield a few)


@pytest.fixture(scope="module")
def api(small_model, tmp_path_factory):
    s, _ = small_model
    tmp = tmp_path_factory.mktemp("fuzz")
    with api_server(tmp, api_env(s, tmp, SENTIMENT_MONITOR_CACHE_SECONDS="5"), wait="/ready") as server:
        yield server


def test_schemathesis_finds_no_5xx_and_no_schema_violation(api):
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    tried, by_status, problems = 0, {}, []
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.generate], database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                nonlocal tried
                tried += 1
                r = case.call(base_url=api.url, timeout=30)
                by_status[r.status_code] = by_status.get(r.status_code, 0) + 1
                if r.status_code >= 500: problems.append(f"{op.label} {r.status_code}: {case.body!r:.200}")
                try: case.validate_response(r, checks=[schemathesis.checks.not_a_server_error,
                                                        schemathesis.checks.response_schema_conformance,
                                                        schemathesis.checks.content_type_conformance])
                except Exception as e: problems.append(f"{op.label}: {type(e).__name__}: {str(e)[:300]}")
            try: run()
            except Unsatisfiable:  # nothing to make invalid (e.g. a GET without parameters)
                assert mode == schemathesis.GenerationMode.NEGATIVE
    print(f"\nschemathesis: {tried} generated cases over {len(list(schema.get_all_operations()))} operations, "
          f"statuses {dict(sorted(by_status.items()))}, problems {len(problems)}")
    assert tried >= 300 and not problems, problems[:5]
    assert api.get("/health").json()["status"] in ("ok", "degraded")


HOSTILE = [  # (what, body bytes, content type, path)
    ("empty body", b"", "application/json", "/predict"),
    ("null", b"null", "application/json", "/predict"),
    ("number for text", b'{"text": 42}', "application/json", "/predict"),
    ("list for text", b'{"text": ["a"]}', "application/json", "/predict"),
    ("whitespace only", b'{"text": "  \\n\\t "}', "application/json", "/predict"),
    ("NUL bytes only", b'{"text": "\\u0000\\u0000"}', "application/json", "/predict"),
    ("zero-width only", json.dumps({"text": "\u200b\u200c\u200d\ufeff"}).encode(), "application/json", "/predict"),
    ("invalid UTF-8", b'{"text": "caf\xe9 \xff\xfe"}', "application/json", "/predict"),
    ("10 MB body", b'{"text": "' + b"a" * 10_000_000 + b'"}', "application/json", "/predict"),
    ("over 10,000 characters", json.dumps({"text": "a" * 10_001}).encode(), "application/json", "/predict"),
    ("deeply nested", b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", "/predict"),
    ("1,001 texts", json.dumps({"texts": ["ok"] * 1001}).encode(), "application/json", "/predict/batch"),
    ("empty batch", b'{"texts": []}', "application/json", "/predict/batch"),
    ("one bad text in a batch", b'{"texts": ["fine", ""]}', "application/json", "/predict/batch"),
    ("content-type lie: text/plain", b'{"text": "great"}', "text/plain", "/predict"),
    ("content-type lie: form", b"text=great", "application/x-www-form-urlencoded", "/predict"),
    ("JSON with extra field", b'{"text": "great", "admin": true}', "application/json", "/predict"),
    ("truncated JSON", b'{"text": "gre', "application/json", "/predict"),
    ("lone surrogate", b'{"text": "\\ud800"}', "application/json", "/predict"),
    ("lone surrogate in a batch", b'{"texts": ["ok", "\\ud800"]}', "application/json", "/predict/batch"),
    ("lone low surrogate opening a batch text", b'{"texts": ["\\udfff fine"]}', "application/json", "/predict/batch"),
    ("half an emoji in a batch", b'{"texts": ["fine", "ok \\ud83d"]}', "application/json", "/predict/batch"),
]


@pytest.mark.parametrize("what,body,ctype,path", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_a_clear_4xx(api, what, body, ctype, path):
    r = httpx.post(api.url + path, content=body, headers={"content-type": ctype}, timeout=60)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json") and r.json()["error"], r.text[:300]
    assert api.get("/health").status_code == 200


def test_right_to_left_and_mixed_scripts_are_answered(api):
    for t in ["\u202eevil\u202c great crew", "شكرا على الرحلة الرائعة", "素晴らしいフライト", "great 👍\u200d flight"]:
        r = api.post("/predict", json={"text": t})
        assert r.status_code == 200 and r.json()["label"] in ("negative", "neutral", "positive")
