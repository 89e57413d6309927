#!/usr/bin/env python3
"""prefopt's config engine against real Hydra: the same configs and overrides through both.

Every case of ../shared/conformance/hydra_overrides.md, plus several hundred generated ones
(values, quoting and escapes, lists and dicts, sweeps, casts, deletes, appends, group choices,
interpolations), is composed twice: by Hydra's compose API (struct mode, as `@hydra.main` gives
it; sweeps expanded by Hydra's BasicSweeper) from YAML files, and by `prefopt config [-m]` from
the same configs written as TOML. A case agrees when both fail, or both succeed with the same
resolved values, types included. Known, documented differences (docs/configuration.md, "Where
prefopt differs from Hydra") are listed in DOCUMENTED below with their reason; a documented case
that starts to agree is reported too, so the list stays true.

    differential.py PREFOPT [--verbose] [--only SUBSTRING]

Exit status: 0 all agree, 1 some differ, 77 Hydra is not installed (ctest reports a skip).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib

    import tomli_w
    import yaml
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
except ImportError as missing:  # the Debian-only quick start has no PyPI peers
    print(f"skipped: {missing} (scripts/install-peers.sh installs Hydra)")
    sys.exit(77)

# ---- The configs both sides compose ----------------------------------------------------------
# One world per folder: name -> (primary config, {group/option: config}). No nulls: TOML has none.
WORLDS = {
    "basic": (
        {
            "defaults": [{"db": "mysql"}, "_self_"],
            "a": 1,
            "f": 1.5,
            "s": "text",
            "t": True,
            "l": [1, 2, 3],
            "b": {"c": 2, "d": {"e": "x"}},
            "i": "${a}",
        },
        {
            "db/mysql": {"host": "localhost", "port": 3306},
            "db/postgres": {"host": "pg", "port": 5432, "user": "admin"},
            "db/sqlite": {"file": "db.sqlite"},
            "opt/adam": {"lr": 0.001},
            "opt/sgd": {"lr": 0.1, "momentum": 0.9},
        },
    ),
    # Nested defaults, packages, a group placed twice, a config's own values before its defaults.
    "nested": (
        {
            "defaults": [{"model": "small"}, {"model@teacher": "large"}, "_self_"],
            "seed": 7,
        },
        {
            "model/small": {"defaults": [{"act": "relu"}, "_self_"], "width": 64},
            "model/large": {"defaults": ["_self_", {"act": "gelu"}], "width": 512},
            "model/act/relu": {"name": "relu", "slope": 0.0},
            "model/act/gelu": {"name": "gelu", "approximate": True},
        },
    ),
    # No defaults list at all, and a config that is only its own values.
    "plain": ({"x": 20, "y": [1, 2, 3], "z": {"w": "v"}}, {}),
}


@dataclass
class Case:
    world: str
    overrides: list[str]
    multirun: bool = False
    unordered: bool = False  # shuffle(): compare the trials as a multiset
    origin: str = "generated"

    @property
    def name(self) -> str:
        return f"{self.world}{' -m' if self.multirun else ''} {' '.join(repr(o) for o in self.overrides)}"


@dataclass
class Outcome:
    ok: bool
    value: object = None  # the resolved config, or one per trial
    error: str = ""


# ---- The cases ---------------------------------------------------------------------------------
# The conformance document's cases, as overrides applied to the worlds above.
CONFORMANCE = [
    ["+x= abc-123"], ["+x=a b c\t-\t1 2 3"], ["+x=123abc"], ["+x=a\\,b"], ["+x=\\ ab"],
    ["+x=f\\(a\\, b\\)"], ["+x=$\\{foo.bar\\}"], ["+x=c:\\foo\\a-b.txt"], ["+x=+1"], ["+x=1___0___"],
    ["+x=+inf"], ["+x=."], ["+x=10_0"], ["+x=3.1_4"], ["+x=-10e1"], ["+x=NaN"], ["+x=trUe"],
    ["+x=/-\\+.$%*@?|"], ["+x='foo \\'bar'"], ["+x=['a b']"], ["+x=[1,[a]]"],
    ["+x={a:10,b:{c:[1,2]}}"], ["l=[7,8]"], ["b={c:5}"], ["+x= "], ["+x=["], ["+x=[]aa"],
    ["+x=[1,2,3]'"], ["+x={'0a': 0}"], ["$foo/bar=foobar"], ["+x=int('10.0')"],
    ["x=10"], ["+a=10"], ["++a=10"], ["~a=10"], ["~z"], ["~l.1"], ["foo@bar=10"],
]
CONFORMANCE_MULTIRUN = [
    ["a=1, 2, 3"], ["+x=[a,b],[c,d]"], ["a=choice (a,b)"], ["a=range(10)"], ["a=range(-10, step=-1)"],
    ["f=range(1.0, 3.14, 0.1)"], ["a=interval(10,11)"], ["a=tag(tag1,tag2,sweep=range(1,2))"],
    ["db=glob(include=[m*, p*], exclude=s*)"], ["a=sort(a,c,b,reverse=true)"], ["a=sort(range(9,0,-1))"],
    ["a=range(start=10,20,1)"], ["a=sort(3,2,str(1))"], ["a=int(10.0)"], ["a=str(10.0)"], ["a=str([1,2])"],
    ["a=1,2", "b.c=3,4"],
]

# Values, each assigned to a new key, an int, a table, a list and a nested key.
VALUES = [
    # ints and floats
    "1", "-1", "+1", "0", "007", "10_0", "1_000", "1__0", "_1", "1_", "0x10", "1e3", "1E-3", "-10e1",
    "1.5", ".5", "5.", "-.5", "3.1_4", "1.5e+2", "1e", "1.5.5", "inf", "-inf", "+inf", "INF", "nan", "NaN",
    "-nan", "infinity", "1.0e400",
    # bools
    "true", "false", "True", "TRUE", "trUe", "yes", "on", "off", "t", "1true",
    # unquoted strings and escapes
    "abc", "abc-123", " abc ", "a b", "a\tb", "123abc", "a\\,b", "\\ ab", "ab\\ ", "a\\=b", "a\\:b",
    "f\\(a\\, b\\)", "\\[x\\]", "\\{x\\}", "$\\{foo\\}", "c:\\foo\\a-b.txt", "a\\\\b", "ab\\\\", "a\\b",
    "/-\\+.$%*@?|", ".", "..", "a:b", "a=b", "é", "naïve", "a,b", "a b,c", "a#b", "a;b", "~x", "+x",
    "", " ",
    # quoted strings
    "'foo'", '"foo"', "'foo \\'bar'", '"foo \\"bar"', "'it\"s'", '"it\'s"', "'a, b'", '"a, b"',
    "'a\\\\'", "'a\\\\\\''", "'a\\\\b'", "'a\\b'", "'\\\\'", "''", '""', "' x '", "'[1,2]'", "'true'",
    "'1'", "'${a}'", "'x_${a}'", "'a", "a'", "'a' 'b'", "'a'b", "'a\\\\\\\\'",
    # interpolations
    "${a}", "${b.c}", "x_${a}", "${b}", "${b.d}", "${nope}", "${a}_${f}", "${l}", "${s}${s}",
    "${b.d.e}x", "\\${a}", "$a", "${}", "${a",
    # lists
    "[]", "[1,2]", "[ 1 , 2 ]", "['a b']", "[1,[a]]", "[a,b,]", "[,]", "[1,2", "[{a:1}]", "[${a}]",
    "[true, 1.5, x]", "['a\\\\', 'b\\\\']", "['a', \"b\"]", "[a b, c]", "[[]]", "[1, 2]x", "[\\,]",
    "[nan, inf]", "[1, ,2]",
    # dicts
    "{}", "{a:10}", "{a: 10, b: {c: [1,2]}}", "{x: 1, y: two}", "{'0a': 0}", "{a:}", "{a: 1, a: 2}",
    "{1: 2}", "{a-b: 1}", "{a b: 1}", "{a: {}}", "{c: 9}", "{d: {f: 1}}", "{a:[1,{b:2}]}", "{a: b: c}",
    "{a: ${a}}", "{true: 1}", "{a: ,b: 1}",
    # casts and other functions
    "int(10.0)", "int(1.5)", "int(-1.5)", "int('10')", "int('10.0')", "int(true)", "int(abc)", "float(1)",
    "float('1.5')", "float(inf)", "str(10.0)", "str([1,2])", "str(true)", "str({a:1})", "str(1e3)",
    "bool(1)", "bool(0)", "bool('true')", "bool('abc')", "bool(2.5)", "nofunc(1)", "int()", "int(1,2)",
    "float([1,2])", "int({a:1.5})", "str(abc)", "json_encode(1)",
]
TARGETS = ["+x={}", "a={}", "b={}", "l={}", "++b.c={}"]

SINGLE_RUN = [
    # group choices
    ["db=postgres"], ["db=nonexist"], ["db=posgres"], ["db="], ["+opt=adam"], ["+opt=nonexist"], ["opt=adam"],
    ["~db"], ["~db=mysql"], ["~db=postgres"], ["++db=postgres"], ["++opt=sgd"], ["+db=postgres"],
    ["db=postgres", "db.port=1"], ["db.user=x"], ["db=postgres", "db.user=x"], ["+db.user=x"],
    ["db@other=postgres"], ["+db@other=postgres"], ["+opt@optim=adam"], ["db=sqlite", "+opt=sgd", "opt.lr=1"],
    ["db=[mysql]"], ["db={a:1}"], ["db=1"], ["+opt=adam", "~opt"], ["~opt"],
    # deletes and appends
    ["~a"], ["~a=1"], ["~a=2"], ["~b.c"], ["~b.d"], ["~b.d.e"], ["~z"], ["~l.1"], ["~l.5"], ["~l.0=1"], ["~l"],
    ["~b"], ["~i"], ["+a=1"], ["++a=5"], ["++new.deep.key=1"], ["+b.d.f=1"], ["b.d.e=y"], ["b.z=1"],
    ["+b.z=1"], ["l.0=9"], ["l.5=9"], ["+l.3=4"], ["a.b=1"], ["+a.b=1"], ["s.x=1"], ["b.c.d=1"],
    ["+b={z: 1}"], ["+l=[9]"], ["++b={z: 1}"], ["++l=[9]"], ["b={z: 1}"], ["b.d={}"],
    # keys
    ["a b=1"], ["=1"], ["a"], ["+a"], ["~"], ["a.=1"], [".a=1"], ["a..b=1"], ["a/b=1"], ["+a-b=1"],
    ["+a_b=1"], ["+1=x"], ["+a.1=x"], ["+é=1"], ["+$x=1"], ["a =1"], [" a=1"], ["a= 1"], ["+a@b=1"],
    ["+x=1", "+x=2"], ["a=1", "a=2"], ["~a", "+a=3"], ["~a", "a=3"], ["+x=1", "x=2"], ["+x=${x}"],
    ["a=${i}"], ["+y=${b.d}", "b.d.e=z"], ["a=${f}", "f=${a}"],
    # a sweep without -m
    ["a=1,2"], ["a=range(3)"], ["a=choice(1)"], ["db=glob(*)"],
    # list extension (Hydra 1.3)
    ["l=append(4)"], ["l=extend_list(4,5)"], ["b=extend_list(4)"],
]

MULTIRUN = [
    ["a=1,2,3"], ["a=1, 2"], ["a=1,2", "f=3,4"], ["a=1,2", "f=3,4", "s=x,y"], ["a=[1,2],[3,4]"], ["a=choice(a,b)"],
    ["a=choice()"], ["a=choice(1)"], ["a=range(3)"], ["a=range(1,4)"], ["a=range(0,1,0.25)"], ["a=range(5,1)"],
    ["a=range(0)"], ["a=range(1,10,3)"], ["a=range(10,0,-3)"], ["a=range(0,1,0)"], ["a=range(1.5)"],
    ["a=sort(a,c,b)"], ["a=sort(3,1,2,reverse=true)"], ["a=sort(1,a)"], ["a=tag(t1,t2,sweep=range(1,3))"],
    ["a=int(range(1,3))"], ["a=str(1,2)"], ["a=float(1,2)"], ["a=a\\,b,c"], ["a='a,b',c"],
    ["a=interval(1,2)"], ["db=glob(*)"], ["db=glob(m*)"], ["db=glob(*,exclude=s*)"], ["db=glob(include=[m*,p*], exclude=postgres)"],
    ["db=glob(x*)"], ["db=mysql,postgres"], ["db=choice(mysql,postgres)"], ["db=mysql,nonexist"], ["db=sort(sqlite,mysql)"],
    ["+opt=adam,sgd"], ["+opt=glob(*)"], ["db=mysql,postgres", "a=1,2"], ["a=1,2", "db=mysql,postgres"],
    ["a=1,2", "b.c=3", "a=5,6"], ["~a"], [], ["a=5"], ["b={c:1},{c:2}"], ["+x=1,2"], ["++x=1,2"],
    ["~a=1,2"], ["a=choice(1,2),3"], ["a=range(2),range(2)"], ["a=sort(range(3),reverse=true)"],
]
SHUFFLED = [["a=shuffle(1,2,3)"], ["a=shuffle(range(4))"], ["db=shuffle(glob(*))"]]

NESTED = [
    ["model=large"], ["model/act=gelu"], ["teacher/act=relu"], ["model@teacher=small"], ["model/act@model.act=gelu"],
    ["model.width=1"], ["teacher.width=2"], ["model.act.name=x"], ["~model"], ["~model/act"], ["+model/act@extra=gelu"],
    ["model=nope"], ["model/act=nope"], ["seed=${model.width}"], ["+w=${teacher.act.name}"],
]
NESTED_MULTIRUN = [["model=small,large"], ["model/act=glob(*)"], ["model=small,large", "model/act=relu,gelu"]]
PLAIN = [["x=1"], ["+w=1"], ["~y.0"], ["y.1=5"], ["z={w: u}"], ["z={q: 1}"], ["y={}"], ["y=[]"], ["z=[]"], ["x={}"]]

# Deliberate differences, each documented in docs/configuration.md ("Where prefopt differs from
# Hydra"): the reason, and which cases it covers.
def _any(case: Case, test) -> bool:
    return any(test(o) for o in case.overrides)


DOCUMENTED = [
    ("non-ASCII letters are accepted in unquoted values and keys (Hydra's lexer takes ASCII only)",
     lambda c: _any(c, lambda o: any(ord(ch) > 127 for ch in o))),
    ("an escaped $\\{x\\} stays the literal text ${x}; in Hydra the escape only gets it past the override "
     "parser and OmegaConf then resolves ${x} as an interpolation",
     lambda c: _any(c, lambda o: "$\\{" in o)),
    ("a swept str() keeps its strings; Hydra's basic sweeper re-parses each value from its text, so "
     "str(10.0) comes back a float", lambda c: c.multirun and _any(c, lambda o: re.match(r"\w+=str\(", o) is not None)),
    ("~list.N deletes element N (the conformance case); Hydra 1.3.8 raises a TypeError",
     lambda c: _any(c, lambda o: re.match(r"~[ly]\.[0-2](=|$)", o) is not None)),
    ("TOML keys are strings: {true: 1} has the key 'true', where OmegaConf keeps a bool key",
     lambda c: _any(c, lambda o: re.match(r"(\+x|a|\+\+b\.c)=\{(true|false)\s*:", o) is not None)),
    ("++group=option adds a group or changes its option; Hydra refuses force-add for config groups",
     lambda c: _any(c, lambda o: re.match(r"\+\+(db|opt)=", o) is not None)),
    ("a group option names one option; Hydra also takes a list of options", lambda c: _any(c, lambda o: o.startswith("db=["))),
    ("+a.b=1 where a is a scalar is refused; Hydra silently replaces the scalar with a table",
     lambda c: c.overrides in (["+a.b=1"], ["+a.1=x"])),
    ("a sweep over no values is an error; Hydra runs no job and says nothing",
     lambda c: c.multirun and c.overrides in (["a=range(5,1)"], ["a=range(0)"], ["db=glob(x*)"])),
    ("shuffle() takes a glob() of group options too", lambda c: _any(c, lambda o: "shuffle(glob(" in o)),
]


def documented(case: Case) -> str | None:
    return next((reason for reason, covers in DOCUMENTED if covers(case)), None)


def cases() -> list[Case]:
    out = [Case("basic", o, origin="conformance") for o in CONFORMANCE]
    out += [Case("basic", o, multirun=True, origin="conformance") for o in CONFORMANCE_MULTIRUN]
    out += [Case("basic", [t.format(v)]) for v in VALUES for t in TARGETS]
    out += [Case("basic", o) for o in SINGLE_RUN]
    out += [Case("basic", o, multirun=True) for o in MULTIRUN]
    out += [Case("basic", o, multirun=True, unordered=True) for o in SHUFFLED]
    out += [Case("nested", o) for o in NESTED] + [Case("nested", o, multirun=True) for o in NESTED_MULTIRUN]
    out += [Case("plain", o) for o in PLAIN]
    return out


# ---- Running both ------------------------------------------------------------------------------
def write_worlds(root: Path) -> None:
    for world, (primary, groups) in WORLDS.items():
        for name, config in {"main": primary, **groups}.items():
            for kind, text in (("hydra", yaml.safe_dump(config)), ("prefopt", tomli_w.dumps(config))):
                path = root / kind / world / f"{name}.{'yaml' if kind == 'hydra' else 'toml'}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)


def normalize(value):
    """Values compared with their types (True is not 1), NaN equal to NaN, floats to 12 digits."""
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else float(f"{value:.12g}"))
    return (type(value).__name__, value)


def run_hydra(root: Path, case: Case) -> Outcome:
    config_dir = str(root / "hydra" / case.world)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            if not case.multirun:
                parsed = OverridesParser.create().parse_overrides(case.overrides)
                if any(o.is_sweep_override() for o in parsed):
                    return Outcome(False, error="a sweep without -m")  # what @hydra.main says
                jobs = [case.overrides]
            else:
                loader = GlobalHydra.instance().config_loader()
                parsed = OverridesParser.create(config_loader=loader).parse_overrides(case.overrides)
                jobs = BasicSweeper.split_arguments(parsed, None)[0]
            configs = []
            for job in jobs:
                cfg = compose(config_name="main", overrides=job)
                configs.append(OmegaConf.to_container(cfg, resolve=True))
    except Exception as e:  # every Hydra error ends the case; which one is not compared
        return Outcome(False, error=f"{type(e).__name__}: {e}".splitlines()[0])
    return Outcome(True, configs if case.multirun else configs[0])


def run_prefopt(prefopt: str, root: Path, all_cases: list[Case]) -> list[Outcome]:
    """Every case through one `prefopt config --batch`: each request is answered as its own
    `prefopt config` process would have been, exit status included."""
    requests = []
    for case in all_cases:
        args = [str(root / "prefopt" / case.world / "main.toml"), *case.overrides]
        requests.append(json.dumps(args + (["-m"] if case.multirun else [])))
    env = {**os.environ, "PREFOPT_PLUGIN_PATH": ""}
    result = subprocess.run([prefopt, "config", "--batch"], input="\n".join(requests) + "\n", capture_output=True,
                            text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"prefopt config --batch failed ({result.returncode}): {result.stderr}")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    if len(answers) != len(all_cases):
        raise SystemExit(f"prefopt config --batch answered {len(answers)} of {len(all_cases)} requests")
    outcomes = []
    for case, answer in zip(all_cases, answers):
        if answer["status"] != 0:
            error = answer["err"].strip().splitlines()[-1] if answer["err"].strip() else ""
            # Configuration errors exit 2; anything else (a crash, a plugin error) never agrees.
            outcomes.append(Outcome(False, error=error if answer["status"] == 2 else f"exit {answer['status']}: {error}"))
            continue
        parsed = tomllib.loads(answer["out"])
        outcomes.append(Outcome(True, [t["config"] for t in parsed.get("trial", [])] if case.multirun else parsed))
    return outcomes


def agree(case: Case, hydra: Outcome, prefopt: Outcome) -> bool:
    if prefopt.error.startswith("exit "):
        return False  # a crash, or a wrong exit status, never agrees
    if not hydra.ok or not prefopt.ok:
        return hydra.ok == prefopt.ok
    h, p = normalize(hydra.value), normalize(prefopt.value)
    if case.unordered:
        h, p = (sorted(json.dumps(t, sort_keys=True) for t in side) for side in (h, p))
    return h == p


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefopt", help="the prefopt binary")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args()

    all_cases = [c for c in cases() if not args.only or args.only in c.name]
    with tempfile.TemporaryDirectory(prefix="prefopt-hydra-") as tmp:
        root = Path(tmp)
        write_worlds(root)
        prefopt_outcomes = run_prefopt(args.prefopt, root, all_cases)
        hydra_outcomes = [run_hydra(root, c) for c in all_cases]

    differ, known, stale = [], 0, []
    for case, hydra, prefopt in zip(all_cases, hydra_outcomes, prefopt_outcomes):
        same = agree(case, hydra, prefopt)
        reason = documented(case)
        if reason and not same:
            known += 1
        elif reason:
            stale.append(case)
        elif not same:
            differ.append((case, hydra, prefopt))
        if args.verbose or (not same and not reason):
            mark = "ok  " if same else ("doc " if reason else "DIFF")
            print(f"{mark} {case.name}")
            if not same:
                show = lambda o: f"value {o.value!r}" if o.ok else f"error: {o.error}"
                print(f"       hydra:   {show(hydra)}\n       prefopt: {show(prefopt)}")
                if reason:
                    print(f"       documented: {reason}")
    for case in stale:
        print(f"STALE {case.name}: documented as a difference but now agrees; narrow DOCUMENTED and the docs")
    conformance = sum(c.origin == "conformance" for c in all_cases)
    print(f"{len(all_cases)} cases ({conformance} from the conformance document): "
          f"{len(all_cases) - len(differ) - known - len(stale)} agree, {known} documented differences, "
          f"{len(differ)} differ, {len(stale)} stale")
    print(f"{len(all_cases) - len(differ) - len(stale)} passed, {len(differ) + len(stale)} failed")
    return 1 if differ or stale else 0


if __name__ == "__main__":
    sys.exit(main())
