"""VADER in the sentiment task against PyPI's vaderSentiment, the reference implementation.

Scores every fortune entry the task reads (some 15,000 texts of real English: negations, "but",
ALL CAPS, "!!") and the package's own demonstration sentences with both and requires equal
compound scores (the package rounds to 4 decimals, so within 5e-5 plus float noise) and equal
shares (rounded to 3). Usage: vader_differential.py VADER_PROBE FORTUNES
"""
import subprocess
import sys
from pathlib import Path

try:
    import vaderSentiment.vaderSentiment as vs
except ImportError:
    print("skipped: vaderSentiment is not in the peers' venv (scripts/install-peers.sh)")
    sys.exit(77)

probe, fortunes = sys.argv[1], sys.argv[2]
if not Path(fortunes).exists():
    print(f"skipped: no fortune files at {fortunes} (apt-get install fortunes)")
    sys.exit(77)

lexicon = Path(vs.__file__).with_name("vader_lexicon.txt")
analyzer = vs.SentimentIntensityAnalyzer()

demonstrations = [
    "VADER is smart, handsome, and funny.",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today only kinda sux! But I'll get by, lol",
    "Not bad at all",
    "Sentiment analysis has never been this good!",
    "With VADER, sentiment analysis is the shit!",
    "On the other hand, VADER is quite bad ass",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "No good, no bad, no or nor great things?? Really???",
    "good but good, bad but bad good",
    "",
]
entries = subprocess.run([probe, "fortunes", fortunes], check=True, capture_output=True, text=True).stdout.splitlines()
texts = demonstrations + entries
scored = subprocess.run([probe, "score", str(lexicon)], input="\n".join(texts) + "\n", check=True,
                        capture_output=True, text=True).stdout.splitlines()
assert len(scored) == len(texts), (len(scored), len(texts))

mismatches = []
for text, line in zip(texts, scored):
    negative, neutral, positive, compound = map(float, line.split())
    want = analyzer.polarity_scores(text)
    if (abs(compound - want["compound"]) > 5.1e-5 or abs(negative - want["neg"]) > 5.1e-4
            or abs(neutral - want["neu"]) > 5.1e-4 or abs(positive - want["pos"]) > 5.1e-4):
        mismatches.append((text, (negative, neutral, positive, compound), want))

print(f"{len(texts)} texts ({len(entries)} fortune entries), {len(mismatches)} mismatches")
for text, got, want in mismatches[:10]:
    print(f"  {text[:100]!r}\n    prefopt {got}\n    vaderSentiment {want}")
sys.exit(1 if mismatches else 0)
