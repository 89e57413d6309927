#!/usr/bin/env python3
"""Experiment-tracking export, checked by the real peers.

Starts a real `mlflow server` on localhost (a free port, a SQLite store, proxied artifacts in a
temporary folder), runs a two-trial `prefopt sweep` of a tiny best-of-n experiment with
`tracking.tensorboard` and `tracking.mlflow_uri` set, then checks with MLflow's own client that
the experiment is named after the sweep and holds one FINISHED run per trial (run name, tags,
params of the resolved config, metric histories equal to metrics.jsonl, the artifacts), and with
TensorBoard's own reader that each trial's event files hold the same scalars. Last, a trial whose
MLflow server is gone still finishes, saying so in run.log.

    tracking_test.py PREFOPT SOURCE_DIR

Exit status: 0 passed, 1 failed, 77 the peers are not installed (ctest reports a skip).
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

try:
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError as missing:
    print(f"skipped: {missing} (scripts/install-peers.sh installs MLflow and TensorBoard)")
    sys.exit(77)

TINY = ["policy.width=16", "sft.steps=20", "sft.corpus_size=256", "preferences.pairs=64", "preferences.held_out=32",
        "reward_models.members=2", "eval.prompts=16"]
failures: list[str] = []


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    log = open(work / "mlflow-server.log", "w")
    server = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{work / 'mlflow.sqlite'}", "--artifacts-destination", str(work / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow server exited with {server.returncode}: {(work / 'mlflow-server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as response:
                if response.status == 200:
                    return server, uri
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("mlflow server did not answer /health within 90 s")


def metrics_rows(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "metrics.jsonl").read_text().splitlines()]


def main() -> int:
    prefopt, source = sys.argv[1], Path(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="prefopt-tracking-") as tmp:
        work = Path(tmp)
        server, uri = start_mlflow(work)
        try:
            run_checks(prefopt, source, work, uri)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
    print(f"{len(failures)} failed" if failures else "all tracking checks passed")
    return 1 if failures else 0


def run_checks(prefopt: str, source: Path, work: Path, uri: str) -> None:
    sweep_file = work / "tracked.toml"
    overrides = TINY + ["+tracking.tensorboard=true", f"+tracking.mlflow_uri={uri}"]
    sweep_file.write_text(f'experiment = "{source / "experiments" / "best_of_n.toml"}"\n'
                          f"overrides = {json.dumps(overrides)}\n"
                          '[grid]\n"algorithm.n" = "[1,4],[1,2,8]"\n')
    out = work / "tracked"
    env = {**os.environ, "PREFOPT_PLUGIN_PATH": ""}
    result = subprocess.run([prefopt, "sweep", str(sweep_file), "--out", str(out), "--cache", str(work / "cache")],
                            capture_output=True, text=True, env=env, timeout=600)
    check(result.returncode == 0, f"the tracked sweep finishes (exit {result.returncode}) {result.stderr[-1500:]}")
    trials = [t["name"] for t in json.loads((out / "sweep.json").read_text())["trials"]]
    check(len(trials) == 2, "the sweep has two trials")

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked")
    check(experiment is not None, "the MLflow experiment is named after the sweep folder")
    if experiment is None:
        return
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    check(sorted(runs) == sorted(trials), f"one MLflow run per trial, named after it: {sorted(runs)}")
    for name in trials:
        run = runs.get(name)
        if run is None:
            continue
        trial_dir = out / name
        rows = metrics_rows(trial_dir)
        check(run.info.status == "FINISHED", f"{name}: the run is FINISHED")
        check(run.data.tags.get("prefopt.sweep") == "tracked" and run.data.tags.get("prefopt.trial") == name,
              f"{name}: tags name the sweep and the trial")
        n = json.loads((trial_dir / "summary.json").read_text())
        check(run.data.params.get("algorithm.n") in ("[1, 4]", "[1, 2, 8]") and run.data.params.get("policy.width") == "16"
              and run.data.params.get("algorithm.plugin") == "best_of_n",
              f"{name}: params are the resolved config, flattened ({run.data.params.get('algorithm.n')})")
        for key in ("gold", "proxy", "kl", "win_rate", "proxy_members/1", "algorithm/n"):
            history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
            expected = [(r["step"], r["algorithm"]["n"] if key == "algorithm/n" else
                         r["proxy_members"][1] if key == "proxy_members/1" else r[key]) for r in rows]
            check(len(history) == len(expected) and all(h[0] == e[0] and math.isclose(h[1], e[1], rel_tol=1e-12, abs_tol=1e-12)
                                                       for h, e in zip(history, expected)),
                  f"{name}: MLflow's history of {key} is metrics.jsonl's ({len(history)} points)")
        artifacts = sorted(a.path for a in client.list_artifacts(run.info.run_id))
        check({"summary.json", "resolved.toml"} <= set(artifacts), f"{name}: artifacts {artifacts}")
        downloaded = Path(client.download_artifacts(run.info.run_id, "summary.json", str(work / f"download-{name}")))
        check(json.loads(downloaded.read_text()) == n, f"{name}: the summary.json artifact is the trial's")

        events = EventAccumulator(str(trial_dir / "tensorboard"))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        check({"gold", "proxy", "kl", "win_rate", "algorithm/n"} <= tags, f"{name}: TensorBoard has the scalars")
        for key in ("gold", "kl", "win_rate"):
            scalars = [(e.step, e.value) for e in events.Scalars(key)] if key in tags else []
            check(len(scalars) == len(rows) and all(s[0] == r["step"] and math.isclose(s[1], r[key], rel_tol=1e-6, abs_tol=1e-6)
                                                    for s, r in zip(scalars, rows)),
                  f"{name}: TensorBoard's {key} is metrics.jsonl's (float32)")

    # The tracking server gone: the trial still finishes, and says why it tracked nothing.
    closed = f"http://127.0.0.1:{free_port()}"
    lost = subprocess.run([prefopt, "run", str(source / "experiments" / "best_of_n.toml"), "--out", str(work / "lost"),
                           "--cache", str(work / "cache"), *TINY, f"+tracking.mlflow_uri={closed}"],
                          capture_output=True, text=True, env=env, timeout=600)
    check(lost.returncode == 0 and (work / "lost" / "summary.json").exists(), "a trial whose MLflow server is gone finishes")
    check("tracking: cannot start an MLflow run" in (work / "lost" / "run.log").read_text(), "run.log says MLflow was unreachable")


if __name__ == "__main__":
    sys.exit(main())
