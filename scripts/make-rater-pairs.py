#!/usr/bin/env python3
"""Build a small preference dataset whose labels are real human judgments.

Each pair is a fortune (Debian's fortune files) split into a prompt (its first
4 or 5 words) and a response; response A is the original, response B swaps one
word for a VADER lexicon word whose mean valence differs by at least 1.0.

VADER's lexicon (vaderSentiment 3.3.2, vader_lexicon.txt) lists, per token,
ten human raters' valence ratings (-4..4).  Column k becomes annotator
"rater-<k+1>": that rater prefers the response holding the word they rated
higher, and an equal rating gives a row with "tie": true (A as chosen).  So
each pair yields ten rows whose chosen/rejected order follows each rater.

Caveat: VADER's ratings were collected by crowdsourcing, so column k is not
the same person for every word; "rater-3" means "the third rating recorded
for each word", not one consistent annotator.  Tokens listed twice in the
lexicon (e.g. "lol", "sob"; two different rating sets) are left out because
neither set is the word's single judgment.

Output: JSON Lines, one row per (pair, rating column), keys prompt, chosen,
rejected, annotator and, on tie rows only, tie.  Byte-for-byte deterministic
for the same inputs and --seed.  A summary goes to stderr.
"""
import argparse
import collections
import glob
import json
import os
import random
import re
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = os.environ.get("PREFOPT_VENV", os.path.expanduser("~/.cache/prefopt/torch-venv"))
# sorted() so the default does not depend on the file system's listing order.
LEXICONS = sorted(glob.glob(f"{VENV}/lib/python3*/site-packages/vaderSentiment/vader_lexicon.txt"))
PUNCT = re.escape(string.punctuation)
TOKEN = re.compile(rf"([{PUNCT}]*)([A-Za-z]+)([{PUNCT}]*)")


def read_fortunes(folder):
    entries = []
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and "." not in p.name):
        # Bytes, not str: bytes' \s is ASCII-only, so a non-ASCII space (U+00A0) cannot
        # be folded into " " and slip past the printable-ASCII check below.
        for raw in re.split(rb"(?m)^%\r?$", path.read_bytes()):
            text = re.sub(rb"\s+", b" ", raw).strip()
            if text and all(0x20 <= b <= 0x7E for b in text):
                words = text.decode("ascii").split(" ")
                if 6 <= len(words) <= 12:
                    entries.append(words)
    return entries


def read_lexicon(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8") if line.strip()]
    counts = collections.Counter(row[0] for row in rows)
    lexicon = {}  # token -> (mean, ratings); insertion order = file order, for determinism
    for token, mean, _std, ratings in rows:
        ratings = json.loads(ratings)
        if (re.fullmatch(r"[a-z]{3,}", token) and counts[token] == 1 and len(ratings) == 10
                and all(type(r) is int for r in ratings)):
            lexicon[token] = (float(mean), ratings)
    return lexicon


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lexicon", default=LEXICONS[0] if LEXICONS else None, required=not LEXICONS)
    ap.add_argument("--fortunes", default="/usr/share/games/fortunes")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "examples/data/rater-pairs.jsonl"))
    args = ap.parse_args()

    lexicon = read_lexicon(args.lexicon)
    vocab = list(lexicon)
    entries = read_fortunes(args.fortunes)
    rng = random.Random(args.seed)
    rng.shuffle(entries)

    seen, rows = set(), []
    ties = agree = 0
    for words in entries:
        if len(seen) == args.pairs:
            break
        cut = rng.choice((4, 5))
        prompt, response = " ".join(words[:cut]), words[cut:]
        slots = [(i, m) for i, m in enumerate(map(TOKEN.fullmatch, response))
                 if m and m[2].lower() in lexicon]
        if not slots:
            continue
        i, m = rng.choice(slots)
        w = m[2].lower()
        far = [v for v in vocab if abs(lexicon[v][0] - lexicon[w][0]) >= 1.0]
        if not far:
            continue
        new = rng.choice(far)
        if m[2][0].isupper():
            new = new[0].upper() + new[1:]
        # A response continues its prompt's text directly, so it starts with the space between them.
        a = " " + " ".join(response)
        b = " " + " ".join(response[:i] + [m[1] + new + m[3]] + response[i + 1:])
        if (prompt, a, b) in seen:
            continue
        seen.add((prompt, a, b))
        b_by_means = lexicon[new.lower()][0] > lexicon[w][0]
        for k, (rw, rn) in enumerate(zip(lexicon[w][1], lexicon[new.lower()][1])):
            row = {"prompt": prompt, "chosen": b if rn > rw else a,
                   "rejected": a if rn > rw else b, "annotator": f"rater-{k + 1}"}
            if rw == rn:
                row["tie"] = True
                ties += 1
            else:
                agree += (rn > rw) == b_by_means
            rows.append(row)

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        f.writelines(json.dumps(row, ensure_ascii=True) + "\n" for row in rows)
    decided = len(rows) - ties
    print(f"pairs={len(seen)} rows={len(rows)} tie_rows={ties} "
          f"agree_with_means={agree / max(decided, 1):.4f} ({agree}/{decided} non-tie rows)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
