"""Hundreds of malformed specs (``tests/fuzz_specs.py``): every one is refused with one short
line per problem naming the file, never a traceback, a hang or acceptance. The time per case is
a benchmark (``pytest --benchmark-enable tests/test_fuzz_specs.py -k time``), not an
assertion; the reader's limits (size, depth, node count) are what bound it."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from theorybench.cli import _is_loopback, app
from theorybench.spec import SpecError, load_task

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_specs import BASES, cases, dump  # noqa: E402

CASES = list(cases())
BY_CATEGORY: dict[str, list[tuple[str, str, bytes]]] = collections.defaultdict(list)
for _case in CASES:
    BY_CATEGORY[_case[0]].append(_case)
MAX_LINE = 400  # characters of one problem line after the file's path


def refused(folder: Path, name: str, content: bytes) -> SpecError:
    path = folder / "specs" / "fuzz.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_task(path)
    return info.value


def test_the_generator_covers_every_category_with_hundreds_of_cases() -> None:
    assert len(CASES) >= 300
    assert len({name for _, name, _ in CASES}) == len(CASES)
    assert set(BY_CATEGORY) >= {"markup", "absurd", "nonfinite", "names", "columns", "schema",
                                "decoding", "tags", "depth", "aliases", "size", "duplicates",
                                "yaml", "combined"}
    assert list(cases()) == CASES  # deterministic


def test_the_bases_are_valid(tmp_path: Path) -> None:
    for name, base in BASES.items():
        path = tmp_path / name / "fuzz.yaml"
        path.parent.mkdir()
        path.write_bytes(dump(base))
        load_task(path)


@pytest.mark.parametrize(("category", "name", "content"), CASES, ids=[c[1] for c in CASES])
def test_a_malformed_spec_is_refused_with_short_lines(tmp_path: Path, category: str, name: str,
                                                      content: bytes) -> None:
    err = refused(tmp_path, name, content)
    assert err.problems and err.problems[0] is err or err.problems[0].line == err.line
    for problem in err.problems:
        line = problem.line
        assert line.startswith(f"{problem.file}: ") and problem.file == err.file
        assert "\n" not in line and "\r" not in line
        assert len(line) - len(problem.file) <= MAX_LINE, line[:200]
    assert str(err).splitlines() == [p.line for p in err.problems]


HEAVY = [c for c in CASES if c[1] in {
    "top-bomb-20", "reference-at-bomb-20", "flow-list-50000", "flow-map-50000", "unclosed-deep",
    "block-deep", "comment-5000000", "many-keys", "sweep-2x20000x20000@stability",
    "sweep-axis-100000@overparam", "huge-string-value@minmax", "combined-0@minmax"}]


@pytest.mark.parametrize(("category", "name", "content"), HEAVY, ids=[c[1] for c in HEAVY])
def test_time_to_refuse_a_heavy_case(benchmark, tmp_path: Path, category: str, name: str,
                                     content: bytes) -> None:
    """Benchmark of the cases that cost most to refuse (bombs, depth, size, many values): the
    time per case is measured (``--benchmark-enable``), not asserted."""
    problems = benchmark(lambda: refused(tmp_path, name, content).problems)
    assert problems


def test_every_problem_of_a_file_is_reported(tmp_path: Path) -> None:
    data = yaml.safe_load(dump(BASES["stability"]))
    data.update(version="x", title=None, extra=1)
    data["experiment"]["params"]["widht"] = 3
    data["expect"][0]["metric"] = "ghost"
    data["controls"].append({"name": "he", "override": {"init": "he"}})
    data["experiment"]["sweep"]["depth"] = [2, 2]
    err = refused(tmp_path, "many", dump(data))
    fields = [p.field for p in err.problems]
    assert {"version", "title", "extra"} <= set(fields), fields
    data.update(version=1, title="t")
    data.pop("extra")
    err = refused(tmp_path, "many", dump(data))
    fields = [p.field for p in err.problems]
    assert "experiment.params.widht" in fields and "expect[0].metric" in fields
    assert "controls[1].name" in fields and "experiment.sweep.depth[1]" in fields
    widht = next(p for p in err.problems if p.field == "experiment.params.widht")
    assert "did you mean 'width'" in widht.message


def test_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError) as info:
        load_task(fifo)
    assert info.value.field == "(file)" and "regular file" in info.value.message


def test_cost_over_the_budget_is_refused_unless_allowed(tmp_path: Path) -> None:
    data = yaml.safe_load(dump(BASES["minmax"]))
    data["experiment"]["params"]["steps"] = 10**9
    path = tmp_path / "costly.yaml"
    path.write_bytes(dump(data))
    with pytest.raises(SpecError) as info:
        load_task(path)
    assert any("--allow-expensive" in p.message for p in info.value.problems)
    load_task(path, allow_expensive=True)


CLI_CASES = [c for c in CASES if c[1] in {
    "many-problems@stability", "invalid-utf8", "seeds-0", "top-bomb-9", "key-0@stability",
    "title-and-bad-version-0@overparam"}]


@pytest.mark.parametrize(("category", "name", "content"), CLI_CASES,
                         ids=[c[1] for c in CLI_CASES])
def test_the_real_command_exits_2_with_one_line_per_problem(tmp_path: Path, category: str,
                                                            name: str, content: bytes) -> None:
    path = tmp_path / "specs" / "fuzz.yaml"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_task(path)
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-c", "from theorybench.cli import app; app()",
                           "validate", str(path)], capture_output=True, text=True, timeout=60,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [p.line for p in info.value.problems]


def test_user_text_is_printed_literally(tmp_path: Path, monkeypatch) -> None:
    data = yaml.safe_load(dump(BASES["stability"]))
    data.update(id="stability/markup", title="Loss falls [log scale] with width [/x]")
    data["controls"][0]["name"] = "he"
    path = tmp_path / "tasks" / "stability" / "markup.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(dump(data))
    (tmp_path / "suites").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("THEORYBENCH_ROOT", raising=False)
    shown = CliRunner().invoke(app, ["show", "stability/markup"])
    assert shown.exit_code == 0, shown.output
    assert "Loss falls [log scale] with width [/x]" in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n'[bold]k': 1\n'[/x]': 2\n")
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "[bold]k" in result.output and "[/x]" in result.output
    missing = CliRunner().invoke(app, ["run", "[/x]"])
    assert missing.exit_code == 2 and "[/x]" in missing.output


def test_cuda_without_cuda_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(app, ["run", "anything", "--device", "cuda"])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "CUDA" in result.output


def test_loopback_addresses() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")
    assert not _is_loopback("example.org")
