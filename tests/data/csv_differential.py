"""The dataset reader's CSV against Python's csv module, the reference reader.

Writes 300 random files with Python's csv.writer (minimal and full quoting; fields with commas,
quotes, newlines, CRLF, leading and trailing spaces, empty strings, UTF-8) and requires
records_probe to read the same rows, keyed by the header, starting on the same lines. Then a
file with rows of the wrong width: the same rows, and the others reported as bad at their lines.
Usage: csv_differential.py RECORDS_PROBE
"""
import csv
import io
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

probe = sys.argv[1]
PIECES = ["a", "b c", ",", '"', '""', "\n", "\r\n", " ", "  x  ", "é", "日本", "'", ";", "\t", "0", "true", "[1, 2]"]


def field(rng):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))


def expected(text):
    """Rows as csv.reader reads them, each with the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header, rows, start = None, [], 1
    for fields in reader:
        if fields:
            if header is None:
                header = fields
            else:
                rows.append((start, fields))
        start = reader.line_num + 1
    return header, rows


def read(paths):
    """Each file's rows as records_probe reads them, in one process."""
    run = subprocess.run([probe, "csv", *map(str, paths)], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"records_probe failed: {run.stderr}")
    return [json.loads(line) for line in run.stdout.splitlines()]


failures = 0
rng = random.Random(0)
with tempfile.TemporaryDirectory() as folder:
    cases = []
    for case in range(300):
        columns = [f"c{i}" for i in range(rng.randint(2, 5))]
        rows = [[field(rng) for _ in columns] for _ in range(rng.randint(0, 8))]
        text = io.StringIO(newline="")
        writer = csv.writer(text, quoting=rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
                            lineterminator=rng.choice(["\r\n", "\n"]))
        writer.writerow(columns)
        writer.writerows(rows)
        path = Path(folder) / f"case{case}.csv"
        path.write_bytes(text.getvalue().encode("utf-8"))
        header, want = expected(text.getvalue())
        cases.append((path, text.getvalue(), [{"line": line, "row": dict(zip(header, fields))} for line, fields in want]))

    ragged = Path(folder) / "ragged.csv"
    ragged.write_bytes(b'a,b\n1,2\n3\n"x\ny",4\n5,6,7\n')
    cases.append((ragged, ragged.read_bytes().decode(),
                  [{"line": 2, "row": {"a": "1", "b": "2"}}, {"line": 3, "bad": "1 fields where the header has 2"},
                   {"line": 4, "row": {"a": "x\ny", "b": "4"}}, {"line": 6, "bad": "3 fields where the header has 2"}]))

    results = read(path for path, _, _ in cases)
    if len(results) != len(cases):
        sys.exit(f"records_probe answered for {len(results)} of {len(cases)} files")
    for (path, text, want), got in zip(cases, results):
        if got != want:
            failures += 1
            if failures <= 3:
                print(f"{path.name}: {text!r}\n  csv module: {want}\n  prefopt:    {got}")

print(f"{len(cases) - failures} of {len(cases)} files read as Python's csv module reads them")
sys.exit(1 if failures else 0)
