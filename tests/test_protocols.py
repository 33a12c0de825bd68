"""The standard protocols on the service, through their own clients: Triton's HTTP client (the Open Inference Protocol, V2) and
`mlflow models serve`'s scoring protocol, diffed against `mlflow models serve` itself on the same registered model."""
import contextlib
import json
import os
import subprocess
import sys

import httpx
import numpy as np
import orjson
import pytest

from servers import Server, api_env, api_server, free_port, metric, wait_for, wait_until
from sentiment_mlops.predlog import LOG_NAME

TEXTS = ["The crew was wonderful, thank you!", "Sat on the runway for 3 hours. Again.", "is the 6pm flight on time?",
         "naïve café — 👍 straße", "@united thanks for nothing http://t.co/x"]


@pytest.fixture(scope="module")
def served(small_model, tmp_path_factory):
    s, _ = small_model
    tmp = tmp_path_factory.mktemp("protocols")
    with api_server(tmp, api_env(s, tmp), wait="/ready") as api: yield api, s, tmp


@contextlib.contextmanager
def mlflow_models_serve(s, tmp):
    "`mlflow models serve` of the production version of `s`'s store, on 127.0.0.1."
    port, log = free_port(), tmp / "mlflow-serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{s.model_name}@production", "--env-manager",
                                 "local", "-h", "127.0.0.1", "-p", str(port)], env={**os.environ, "MLFLOW_TRACKING_URI": s.tracking_uri},
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(server.url + "/ping", proc=proc, timeout=180)
        yield server
    finally: server.stop()


def test_a_triton_client_talks_to_the_service(served):
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException
    api, s, tmp = served
    client = triton.InferenceServerClient(api.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(s.model_name)
    meta = client.get_model_metadata(s.model_name)
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    labels = meta["labels"]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities", "in_domain", "domain_score"]

    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array(TEXTS, dtype=object))  # (binary, as the client sends by default; all outputs come back in binary)
    result = client.infer(s.model_name, [text], request_id="triton-1")
    reference = api.post("/predict/batch", json={"texts": TEXTS}).json()["predictions"]
    assert [x.decode() for x in result.as_numpy("label")] == [p["label"] for p in reference]
    assert result.as_numpy("probabilities").tolist() == [[p["probabilities"][k] for k in labels] for p in reference]
    assert result.as_numpy("in_domain").tolist() == [p["in_domain"] for p in reference]
    assert result.get_response()["id"] == "triton-1"

    asked = [triton.InferRequestedOutput("label", binary_data=False)]
    text.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=False)
    json_result = client.infer(s.model_name, [text], outputs=asked)
    assert [x.decode() if isinstance(x, bytes) else x for x in json_result.as_numpy("label")] == [p["label"] for p in reference]
    assert json_result.as_numpy("probabilities") is None

    bad = triton.InferInput("text", [2], "BYTES")
    bad.set_data_from_numpy(np.array(["fine", ""], dtype=object))
    with pytest.raises(InferenceServerException, match="text 1: "): client.infer(s.model_name, [bad])
    with pytest.raises(InferenceServerException, match="not served here"): client.get_model_metadata("OtherModel")

    # logged like any prediction: the batch above and the two inferences, five texts each
    lines = lambda: [orjson.loads(x) for x in (tmp / "logs" / LOG_NAME).read_bytes().splitlines()]
    wait_until(lambda: len(lines()) == 15, 10)
    assert sorted(r["label"] for r in lines()) == sorted([p["label"] for p in reference] * 3)
    text_metrics = httpx.get(api.url + "/metrics").text
    assert metric(text_metrics, "sentiment_http_requests_total", endpoint=f"/v2/models/{s.model_name}/infer", method="POST", status="200") == 2
    assert metric(text_metrics, "sentiment_http_requests_total", endpoint=f"/v2/models/{s.model_name}/infer", method="POST", status="400") == 1


PAYLOADS = [
    ("application/json", {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS] + [[""]]}}),
    ("application/json", {"dataframe_records": [{"text": t} for t in TEXTS]}),
    ("application/json", {"inputs": TEXTS}),
    ("application/json", {"inputs": {"text": TEXTS}}),
    ("application/json", {"instances": [{"text": t} for t in TEXTS], "params": {}}),
    ("text/csv", "text\n" + "\n".join(json.dumps(t, ensure_ascii=False) for t in TEXTS) + "\n"),
]


def test_mlflow_clients_get_what_mlflow_models_serve_answers(served):
    api, s, tmp = served
    with mlflow_models_serve(s, tmp) as mlf:
        for kind, payload in PAYLOADS:
            body = payload if isinstance(payload, str) else json.dumps(payload)
            theirs, ours = (httpx.post(url + "/invocations", content=body.encode(), headers={"content-type": kind}, timeout=60)
                            for url in (mlf.url, api.url))
            assert ours.status_code == theirs.status_code == 200, (ours.text, theirs.text)
            assert ours.text == theirs.text, (kind, payload)  # (the same bytes: NaN where a text has an error, like theirs)
        for bad in ('{"texts": ["x"]}', "not json"):
            theirs, ours = (httpx.post(url + "/invocations", content=bad, headers={"content-type": "application/json"}) for url in (mlf.url, api.url))
            assert ours.status_code == theirs.status_code == 400 and ours.json()["error_code"] == theirs.json()["error_code"] == "BAD_REQUEST"
        assert httpx.get(api.url + "/version").text == httpx.get(mlf.url + "/version").text
        assert httpx.get(api.url + "/ping").status_code == 200
    r = httpx.post(api.url + "/invocations", json={"inputs": ["x"] * 1001})
    assert r.status_code == 400 and "the limit is" in r.json()["message"]
