"""Malformed task specs, generated deterministically for the fuzz test.

:func:`cases` yields ``(category, name, content)``: ``content`` is the file's bytes. Each case
starts from one of a few valid specs and breaks it in one way a hostile or careless user
would: bytes that are not UTF-8, YAML with bad tags, deep nesting, alias bombs, huge files,
absurd or non-finite values, duplicate keys and names, rules naming columns that do not exist,
console markup in every kind of text. Every case must be rejected (exit 2) with clean lines.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

import yaml

Case = tuple[str, str, bytes]

BASES: dict[str, dict[str, Any]] = {
    "stability": {
        "id": "stability/fuzz",
        "version": 1,
        "title": "A tiny valid task",
        "claim": "P/eps falls with depth under LeCun initialization.",
        "source": {"paper": "Zhu et al. NeurIPS 2022", "where": "lazy-regime bound"},
        "experiment": {
            "kind": "perturbation_stability",
            "params": {"init": "lecun", "width": 8, "train_steps": 0, "eps": 0.1},
            "sweep": {"depth": [2, 3, 4]},
            "seeds": 3,
        },
        "expect": [{"rule": "trend", "metric": "stability_per_eps", "along": "depth",
                    "direction": "decreasing", "where": {"phase": "init"}}],
        "controls": [{"name": "he", "override": {"init": "he"}, "verdict": "refuted"}],
        "profiles": {"smoke": {"seeds": 3, "params": {"width": 4}}},
        "expected_verdict": {},
    },
    "overparam": {
        "id": "overparam/fuzz",
        "version": 1,
        "title": "Random labels are fitted",
        "claim": "An over-parameterized MLP fits random labels.",
        "source": {"paper": "Zhang et al. ICLR 2017", "where": "Fig. 1a"},
        "experiment": {
            "kind": "random_label_fit",
            "params": {"corruption": 1.0, "width": 16, "n_train": 40, "n_test": 40,
                       "epochs": 2, "batch_size": 10, "lr": 0.1, "momentum": 0.9},
            "seeds": 2,
        },
        "expect": [{"rule": "threshold", "metric": "train_error", "op": "<", "value": 0.01}],
        "controls": [{"name": "small", "override": {"width": 2}, "verdict": "refuted"}],
        "profiles": {"smoke": {"seeds": 2}},
        "expected_verdict": {},
    },
    "minmax": {
        "id": "minmax/fuzz",
        "version": 1,
        "title": "EG converges on a bilinear game",
        "claim": "Extragradient converges on a bilinear game.",
        "source": {"paper": "Korpelevich 1976", "where": "Thm 1"},
        "experiment": {
            "kind": "minmax_dynamics",
            "params": {"game": "bilinear", "schedule": {"step": 0.1}, "trajectories": 4,
                       "steps": 40, "noise": 0.0},
            "sweep": {"algorithm": ["eg", "gda"]},
            "seeds": 2,
        },
        "expect": [{"rule": "probability", "metric": "converged", "op": ">", "value": 0.9,
                    "where": {"algorithm": "eg"}}],
        "controls": [{"name": "noisy", "override": {"noise": 1.0}, "verdict": "refuted"}],
        "expected_verdict": {},
    },
}

BIG_AXES = {"stability/fuzz": ("width", "train_steps"), "overparam/fuzz": ("width", "n_train"),
            "minmax/fuzz": ("trajectories", "steps")}
MARKUP = ["[/x]", "[bold]k", "[/]", "[red]", "[link=http://x]a[/link]", "[log scale]",
          "\x1b[31mred", "[/bold red]"]
NON_FINITE = [".nan", ".inf", "-.inf", ".NaN", ".Inf", "1e999", "-1e999"]
BAD_TAGS = ["!!int abc", "!!bool maybe", "!!timestamp foo", "!!float x", "!!int 0x",
            "!!binary ###", "!!python/object:os.system ls", "!!set 3", "!!omap 3", "!!map 3",
            "!!seq 3", "!!str [1, [", "!!null x", "!<tag:yaml.org,2002:int> 1.5", "!custom x"]


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _mutations() -> list[tuple[str, str, Callable[[dict[str, Any]], Any]]]:
    """(category, name, change): ``change`` edits a copy of a base spec in place."""
    out: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = []

    def add(category: str, name: str, change: Callable[[dict[str, Any]], Any]) -> None:
        out.append((category, name, change))

    # Markup in every kind of text: only what the file says may be printed.
    for i, m in enumerate(MARKUP):
        add("markup", f"key-{i}", lambda d, m=m: d.update({f"k{m}": 1}))
        add("markup", f"param-key-{i}", lambda d, m=m: d["experiment"]["params"].update({m: 1}))
        add("markup", f"kind-{i}", lambda d, m=m: d["experiment"].update(kind=m))
        add("markup", f"rule-{i}", lambda d, m=m: d["expect"][0].update(rule=m))
        add("markup", f"verdict-{i}", lambda d, m=m: d["controls"][0].update(verdict=m))
        add("markup", f"title-and-bad-version-{i}",
            lambda d, m=m: d.update(title=f"Loss falls {m} with width", version=m))
    # Absurd sizes.
    for n in (10**9, 10**6, 2**63, 10**30):
        add("absurd", f"seeds-{n}", lambda d, n=n: d["experiment"].update(seeds=n))
        add("absurd", f"profile-seeds-{n}",
            lambda d, n=n: d.setdefault("profiles", {}).update(smoke={"seeds": n}))
    for n in (3000, 20000):
        add("absurd", f"sweep-2x{n}x{n}", lambda d, n=n: d["experiment"].update(sweep={
            **d["experiment"]["sweep"], **{k: list(range(1, n + 1)) for k in BIG_AXES[d["id"]]}}))
    for key, n in (("steps", 10**12), ("epochs", 10**12), ("train_steps", 10**12),
                   ("width", 10**9), ("trajectories", 10**10), ("n_train", 10**9)):
        add("absurd", f"{key}-{n}", lambda d, key=key, n=n: d["experiment"]["params"].update(
            {key: n}))
    for n in (65, 120, 305, 4000):
        add("absurd", f"id-{n}", lambda d, n=n: d.update(id=d["id"].split("/")[0] + "/"
                                                           + "a" * n))
    for bad in ("stability/..", "stability/.", "stability/con", "stability/nul",
                "stability/a.", "stability/.hidden", "../../etc/passwd", "stability/a/b",
                "stability/com1", "stability/LPT9"):
        add("absurd", f"id-{bad}", lambda d, bad=bad: d.update(id=bad))
    add("absurd", "seed-offset-huge", lambda d: d["experiment"].update(seed_offset=10**30))
    add("absurd", "version-huge", lambda d: d.update(version=10**400))
    add("absurd", "sweep-axis-100000",
        lambda d: d["experiment"]["sweep"].update(extra=list(range(100000))))
    # Non-finite physical quantities and thresholds.
    for v in (float("nan"), float("inf"), float("-inf")):
        tag = str(v)
        for key in ("eps", "lr", "step", "noise", "radius", "label_noise", "max_step"):
            add("nonfinite", f"param-{key}-{tag}",
                lambda d, key=key, v=v: d["experiment"]["params"].update({key: v}))
        add("nonfinite", f"schedule-step-{tag}",
            lambda d, v=v: d["experiment"]["params"].update(schedule={"step": v}))
        add("nonfinite", f"threshold-{tag}", lambda d, v=v: d["expect"][0].update(value=v))
        add("nonfinite", f"min-effect-{tag}", lambda d, v=v: d["expect"][0].update(min_effect=v))
        add("nonfinite", f"sweep-value-{tag}",
            lambda d, v=v: d["experiment"]["sweep"].update(eps=[0.1, v]))
        add("nonfinite", f"override-{tag}", lambda d, v=v: d["controls"][0]["override"].update(
            eps=v, lr=v, noise=v))
        add("nonfinite", f"profile-param-{tag}", lambda d, v=v: d.setdefault(
            "profiles", {}).update(smoke={"params": {"eps": v, "lr": v, "noise": v}}))
    # Names that silently pool rows or double-count trials.
    add("names", "control-named-claim", lambda d: d["controls"][0].update(name="claim"))
    add("names", "two-controls-one-name",
        lambda d: d["controls"].append(copy.deepcopy(d["controls"][0])))
    add("names", "control-name-empty", lambda d: d["controls"][0].update(name=""))
    add("names", "control-name-long", lambda d: d["controls"][0].update(name="x" * 5000))
    add("names", "duplicate-sweep-value", lambda d: [v.append(v[0]) for v in
                                                     d["experiment"]["sweep"].values()]
        if d["experiment"]["sweep"] else d["experiment"].update(sweep={"seeds_x": [1, 1]}))
    add("names", "duplicate-control-sweep-value", lambda d: d["controls"][0].update(
        sweep={k: [v[0], v[0]] for k, v in d["experiment"]["sweep"].items()} or {"w": [1, 1]}))
    add("names", "duplicate-profile-sweep-value", lambda d: d.setdefault("profiles", {}).update(
        smoke={"sweep": {k: [v[0], v[0]] for k, v in d["experiment"]["sweep"].items()}
               or {"w": [1, 1]}}))
    # Rules naming columns the experiment never produces.
    add("columns", "metric", lambda d: d["expect"][0].update(metric="no_such_column"))
    add("columns", "where-key", lambda d: d["expect"][0].update(where={"no_such": 1}))
    add("columns", "along", lambda d: d["expect"].append(
        {"rule": "trend", "metric": d["expect"][0]["metric"], "along": "nowhere",
         "direction": "increasing"}))
    add("columns", "compare-by", lambda d: d["expect"].append(
        {"rule": "compare", "metric": d["expect"][0]["metric"], "by": "nobody", "a": 1, "b": 2,
         "direction": "a_less"}))
    add("columns", "control-rule-metric", lambda d: d["controls"][0].update(
        expect=[{"rule": "threshold", "metric": "ghost", "op": "<", "value": 1.0}]))
    # Plain schema errors (several at once: every one must be reported).
    add("schema", "many-problems", lambda d: d.update(version="x", title=None, claim=[],
                                                      tags="t", extra=1))
    add("schema", "no-experiment", lambda d: d.pop("experiment"))
    add("schema", "experiment-list", lambda d: d.update(experiment=[1, 2]))
    add("schema", "params-list", lambda d: d["experiment"].update(params=[1]))
    add("schema", "sweep-scalar", lambda d: d["experiment"].update(sweep={"depth": 3}))
    add("schema", "sweep-empty", lambda d: d["experiment"].update(sweep={"depth": []}))
    add("schema", "expect-mapping", lambda d: d.update(expect={"rule": "trend"}))
    add("schema", "controls-string", lambda d: d.update(controls="none"))
    add("schema", "override-list", lambda d: d["controls"][0].update(override=[1]))
    add("schema", "override-path-crosses", lambda d: d["controls"][0].update(
        override={"width.x.y": 1}))
    add("schema", "reference-at-huge", lambda d: d.update(reference=[
        {"label": "r", "value": 1.0, "at": {f"k{i}": i for i in range(50)}, "note": "n" * 10**5}]))
    add("schema", "rule-confidence-1", lambda d: d["expect"][0].update(confidence=1.0))
    add("schema", "profile-unknown", lambda d: d.update(profiles={"fast": {}}))
    add("schema", "seeds-negative", lambda d: d["experiment"].update(seeds=-3))
    add("schema", "seeds-bool", lambda d: d["experiment"].update(seeds=True))
    add("schema", "seeds-float", lambda d: d["experiment"].update(seeds=2.5))
    add("schema", "huge-string-value", lambda d: d["experiment"]["params"].update(
        init="x" * 200_000))
    add("schema", "huge-key", lambda d: d["experiment"]["params"].update({"k" * 50_000: 1}))
    return out


def _raw_cases() -> list[tuple[str, str, bytes]]:
    """Files whose bytes, not their parsed meaning, are the problem."""
    base = dump(BASES["stability"])
    text = base.decode()
    out: list[tuple[str, str, bytes]] = []
    out += [("decoding", "latin-1", text.replace("tiny", "tïny").encode("latin-1")),
            ("decoding", "invalid-utf8", base + b"notes: \xff\xfe\xfa\n"),
            ("decoding", "utf16", text.encode("utf-16")),
            ("decoding", "nul-byte", base + b"notes: a\x00b\n"),
            ("decoding", "control-char", base + b"notes: a\x07b\n"),
            ("decoding", "lone-surrogate-escape", base + b'notes: "\\ud800"\n'),
            ("decoding", "empty", b""),
            ("decoding", "only-comment", b"# nothing\n"),
            ("decoding", "null-document", b"null\n"),
            ("decoding", "binary", bytes(range(256)) * 4)]
    for i, tag in enumerate(BAD_TAGS):
        out.append(("tags", f"seeds-{i}", text.replace("seeds: 3\n", f"seeds: {tag}\n", 1)
                    .encode()))
        out.append(("tags", f"title-{i}", text.replace("title: A tiny valid task",
                                                       f"title: {tag}").encode()))
        out.append(("tags", f"top-{i}", f"{tag}\n".encode()))
    for depth in (100, 499, 500, 1000, 5000, 50_000):
        out.append(("depth", f"flow-list-{depth}", base + b"notes: " + b"[" * depth
                    + b"]" * depth + b"\n"))
        out.append(("depth", f"flow-map-{depth}", base + b"notes: " + b"{a: " * depth
                    + b"1" + b"}" * depth + b"\n"))
    out.append(("depth", "unclosed-deep", base + b"notes: " + b"[" * 100_000 + b"\n"))
    out.append(("depth", "block-deep", base + b"notes:\n" + b"".join(
        b"  " * i + b"k:\n" for i in range(1, 300)) + b"  " * 300 + b"v\n"))
    for levels in (3, 6, 9, 12, 20):
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]"
                  for i in range(1, levels + 1)]
        bomb = "\n".join(lines) + "\n"
        out.append(("aliases", f"top-bomb-{levels}", (bomb + text).encode()))
        out.append(("aliases", f"reference-at-bomb-{levels}", (text + "reference:\n  - label: r\n"
                    "    value: 1.0\n    at:\n" + "".join(f"      {ln}\n" for ln in lines)
                    ).encode()))
        out.append(("aliases", f"params-bomb-{levels}", text.replace(
            "  params:\n", "  params:\n" + "".join(f"    {ln}\n" for ln in lines), 1).encode()))
    out.append(("aliases", "merge-key", text.replace("  params:\n", "  params:\n    <<: {x: 1}\n",
                                                     1).encode()))
    out.append(("aliases", "self-alias", b"a: &a [*a]\n" + base))
    out.append(("aliases", "simple-alias", text.replace("seeds: 3\n", "seeds: &s 3\n", 1).encode()
                + b"notes: *s\n"))
    for n in (10**6, 5 * 10**6):
        out.append(("size", f"comment-{n}", base + b"#" + b"x" * n + b"\n"))
        out.append(("size", f"notes-{n}", base + b"notes: " + b"y" * n + b"\n"))
    out.append(("size", "many-keys", base + b"tags:\n" + b"".join(
        f"  - t{i}\n".encode() for i in range(200_000))))
    for key in ("id", "seeds", "experiment", "kind", "params"):
        out.append(("duplicates", f"key-{key}", _duplicate(text, key)))
    out.append(("duplicates", "key-at-top", text.encode() + b"version: 2\n"))
    out.append(("duplicates", "flow-dup", text.replace("seeds: 3\n", "seeds: 3\n", 1).encode()
                + b"x: {a: 1, a: 2}\n"))
    out += [("yaml", "unclosed", b"id: [unclosed\n"),
            ("yaml", "tab-indent", text.replace("  kind", "\tkind", 1).encode()),
            ("yaml", "two-documents", base + b"---\n" + base),
            ("yaml", "list-top", b"- a\n- b\n"),
            ("yaml", "scalar-top", b"just a string\n"),
            ("yaml", "unhashable-key", base + b"? [1, 2]\n: 3\n"),
            ("yaml", "directive", b"%YAML 9.9\n---\n" + base),
            ("yaml", "bad-escape", base + b'notes: "\\q"\n'),
            ("yaml", "unterminated-quote", base + b'notes: "abc\n'),
            ("yaml", "markup-in-error", b"id: [/x] [bold]\n  bad: [\n"),
            ("yaml", "int-key", text.encode() + b"1: 2\n"),
            ("yaml", "null-key", text.encode() + b"~: 2\n")]
    return out


def _duplicate(text: str, key: str) -> bytes:
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip().startswith(f"{key}:"):
            return "".join(lines[:i + 1] + [line] + lines[i + 1:]).encode()
    return (text + f"{key}: 1\n{key}: 2\n").encode()


def cases() -> Iterator[Case]:
    """Every case, in a fixed order: each mutation on each base spec, then the raw files, then
    a seeded sample of combined mutations."""
    mutations = _mutations()
    for category, name, change in mutations:
        for base_name, base in BASES.items():
            data = copy.deepcopy(base)
            try:
                change(data)
            except (KeyError, IndexError, TypeError, AttributeError):
                continue
            if data == base:
                continue
            yield category, f"{name}@{base_name}", dump(data)
    yield from _raw_cases()
    rng = random.Random(15)
    for i in range(40):
        picked = rng.sample(mutations, 3)
        base_name = rng.choice(sorted(BASES))
        data = copy.deepcopy(BASES[base_name])
        for _, _, change in picked:
            with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
                change(data)
        yield "combined", f"combined-{i}@{base_name}", dump(data)
