"""Held-out accuracy of a model on the synthetic VQA task, against a blind guesser.

Each eval question is answered greedily by `build/shortv generate` (the C
runtime, no PyTorch) and scored by normalised exact match (lowercase, no
punctuation or whitespace). The blind baseline never sees an image: it answers
every question of a type with that type's most common answer in the training
split. Standard library only.

    python3 scripts/synth_accuracy.py [-m models/synth-llava] [--data datasets/synth-vqa]
"""
import argparse
import collections
import json
import math
import os
import string
import subprocess


def normalise(text):
    return "".join(c for c in text.lower() if c not in string.punctuation and not c.isspace())


def read_manifest(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def wilson(k, n, z=1.96):
    """95% Wilson score interval of k successes in n."""
    if n == 0:
        return 0.0, 0.0
    p, d = k / n, 1 + z * z / n
    mid, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return mid - half, mid + half


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", default=os.path.join(here, "models/synth-llava"))
    ap.add_argument("--data", default=os.path.join(here, "datasets/synth-vqa"))
    ap.add_argument("--split", default="eval")
    ap.add_argument("--shortv", default=os.path.join(here, "build/shortv"))
    ap.add_argument("--limit", type=int, default=0, help="first N questions only (0: all)")
    ap.add_argument("-o", "--output", help="write per-question answers here (JSON Lines)")
    args = ap.parse_args()

    train = read_manifest(os.path.join(args.data, "train.jsonl"))
    by_type = collections.defaultdict(collections.Counter)
    for r in train:
        by_type[r["type"]][normalise(r["answer"])] += 1
    blind = {t: c.most_common(1)[0][0] for t, c in by_type.items()}

    rows = read_manifest(os.path.join(args.data, args.split + ".jsonl"))
    if args.limit:
        rows = rows[:args.limit]
    stats = collections.defaultdict(lambda: [0, 0, 0])  # type -> [n, model right, blind right]
    out = open(args.output, "w", encoding="utf-8") if args.output else None
    for i, r in enumerate(rows):
        image = os.path.join(args.data, r["image"])
        answer = subprocess.run([args.shortv, "generate", "-m", args.model, "--image", image,
                                 "-p", r["question"], "-n", "8", "-t", "1"],
                                check=True, capture_output=True, text=True).stdout.strip()
        gold = normalise(r["answer"])
        for key in (r["type"], "all"):
            s = stats[key]
            s[0] += 1
            s[1] += normalise(answer) == gold
            s[2] += blind.get(r["type"]) == gold
        if out:
            out.write(json.dumps({"id": r["id"], "type": r["type"], "question": r["question"],
                                  "answer": r["answer"], "model": answer}) + "\n")
        if (i + 1) % 100 == 0:
            print("  %d/%d" % (i + 1, len(rows)), flush=True)
    if out:
        out.close()

    print("| type | n | model | blind (train majority) |")
    print("|---|---|---|---|")
    for key in sorted(stats, key=lambda k: (k == "all", k)):
        n, right, guess = stats[key]
        lo, hi = wilson(right, n)
        name = "**all**" if key == "all" else "%s (%s)" % (key, blind.get(key, "?"))
        print("| %s | %d | %.1f%% [%.1f, %.1f] | %.1f%% |" % (
            name, n, 100 * right / n, 100 * lo, 100 * hi, 100 * guess / n))


if __name__ == "__main__":
    main()
