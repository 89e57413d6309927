"""prefopt's search samplers beside Optuna's on the same test functions at the same budget.

Runs build/bin/prefopt_search_quality (prefopt's random, tpe and gp), then Optuna's RandomSampler,
TPESampler (univariate, and multivariate as prefopt's) and GPSampler, each
with 8 random startup trials, on Branin, Branin with a categorical switch and Hartmann-6, and
prints the mean regret (optimum - best found) with its standard error over seeds after 20 and
after BUDGET evaluations, and the seconds per proposal, as a Markdown table.

    bench/search_vs_optuna.sh [BUDGET] [SEEDS]     # installs the venv, builds, runs this
"""
import json
import math
import statistics
import subprocess
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(x, y):
    x, y = 15 * x - 5, 15 * y
    r = y - 5.1 / (4 * math.pi ** 2) * x * x + 5 / math.pi * x - 6
    return -(r * r + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    return sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6))) for i in range(4))


FUNCTIONS = {
    "branin": (lambda t: branin(t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), -0.397887),
    "branin_categorical": (lambda t: branin(t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1))
                           - (0.0 if t.suggest_categorical("loss", ["a", "b", "c"]) == "b" else 2.0), -0.397887),
    "hartmann6": (lambda t: hartmann6([t.suggest_float(f"x{d}", 0, 1) for d in range(6)]), 3.32237),
}

SAMPLERS = {
    "optuna random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "optuna tpe univariate": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=False),
    "optuna tpe multivariate": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True),
    "optuna gp": lambda seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=8),
}


def optuna_rows(budget, seeds):
    for name, (objective, optimum) in FUNCTIONS.items():
        for sampler_name, make in SAMPLERS.items():
            regrets, seconds = [], 0.0
            for seed in range(seeds):
                study = optuna.create_study(direction="maximize", sampler=make(seed))
                start = time.perf_counter()
                study.optimize(objective, n_trials=budget)
                seconds += time.perf_counter() - start
                best, curve = -math.inf, []
                for trial in study.trials:
                    best = max(best, trial.value)
                    curve.append(optimum - best)
                regrets.append(curve)
            yield {"function": name, "sampler": sampler_name, "seconds_per_proposal": seconds / (budget * seeds),
                   "regret": regrets}


def cell(regrets, at):
    values = [curve[at - 1] for curve in regrets]
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.3f} ± {se:.3f}"


def main():
    quality, budget, seeds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ours = subprocess.run([quality, str(budget), str(seeds)], check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in ours.splitlines()] + list(optuna_rows(budget, seeds))
    print(f"Mean regret ± standard error over {seeds} seeds (lower is better); Optuna {optuna.__version__}\n")
    print(f"| function | sampler | after 20 | after {budget} | s per proposal |")
    print("|---|---|---|---|---|")
    for function in FUNCTIONS:
        for row in rows:
            if row["function"] == function:
                print(f"| {function} | {row['sampler']} | {cell(row['regret'], 20)} | {cell(row['regret'], budget)} | "
                      f"{row['seconds_per_proposal']:.4f} |")


if __name__ == "__main__":
    main()
