"""The ``theorybench`` command: list, show, validate and run tasks and suites.

Exit status: 0 when every task ran (whatever its verdict), 1 when a task's verdict is ``error``,
2 for bad input (a malformed spec, an unknown task or suite).
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from theorybench import cost, registry
from theorybench.cache import CellCache
from theorybench.cache import default_dir as default_cache_dir
from theorybench.device import DEVICE_CHOICES, resolve_device
from theorybench.dryrun import DRY_RUN_SEEDS
from theorybench.executors import DaskExecutor, Executor, LocalExecutor
from theorybench.numbers import fmt
from theorybench.paths import runs_dir, tasks_dir
from theorybench.progress import Eta
from theorybench.results import load_history
from theorybench.runner import (
    CellOutput,
    PlannedTask,
    TaskOutcome,
    plan_task,
    run_tasks,
)
from theorybench.spec import (
    MAX_SEEDS,
    PROFILES,
    Problems,
    SpecError,
    find_suite,
    load_suite,
    load_task,
    resolve,
    suite_includes,
    suite_tasks,
    task_id_of,
    task_paths,
)
from theorybench.status import headline
from theorybench.threads import available_cores
from theorybench.yaml_safe import short

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Check claims of deep-learning theory against practice.")
# Piped output (CI logs) gets a wide table rather than rich's default of 80 columns. Text from
# specs and records is always printed as rich Text, never parsed as console markup.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

VERDICT_STYLE = {"holds": "green", "refuted": "red", "inconclusive": "yellow", "error": "bold red"}


def _say(label: str, style: str, message: object, out: Console | None = None) -> None:
    """``label`` in ``style`` then ``message`` literally, on one line however long."""
    (out or err_console).print(Text.assemble((label, style), " ", str(message)), highlight=False,
                               soft_wrap=True)


def _verdict(verdict: object) -> Text:
    return Text(str(verdict), style=VERDICT_STYLE.get(str(verdict), ""))


def _mark(ok: bool) -> Text:
    return Text("✓", style="green") if ok else Text("✗", style="red")


def _fail(message: str) -> typer.Exit:
    for line in str(message).splitlines() or [""]:
        _say("error:", "bold red", line)
    return typer.Exit(2)


@dataclass
class Target:
    """What ``run`` was asked for: task files, the profile, and the suite name if any."""

    paths: list[Path]
    profile: str
    suite: str | None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        return False


def _task_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and _is_file(path):
        return path
    path = tasks_dir() / f"{name}.yaml"
    if _is_file(path) and path.resolve().is_relative_to(tasks_dir().resolve()):
        return path
    raise _fail(f"no task or suite named {short(name)} (see `theorybench list`)")


INCLUDE_HELP = ("a folder of plug-ins (experiment kinds, methods, rules) to import first; "
                "repeatable")


def _include(folders: Iterable[Path] | None) -> None:
    """Import plug-in folders (``--include``, a suite's ``include:``); a bad one fails cleanly."""
    try:
        registry.include(folders or [])
    except Exception as exc:  # noqa: BLE001  (an include's own import error, reported by name)
        raise _fail(f"--include: {type(exc).__name__}: {exc}") from None


def _target(name: str, profile: str | None) -> Target:
    path = Path(name)
    suite_path = (path if _is_file(path) and path.parent.name == "suites" else
                  find_suite(name) if "/" not in name and "\0" not in name else None)
    if suite_path is None:
        return Target([_task_path(name)], profile or "smoke", None)
    suite = load_suite(suite_path)
    _include(suite_includes(suite, suite_path))
    return Target(suite_tasks(suite, suite_path), profile or suite.profile, suite.id)


def _control_cell(outcome: TaskOutcome) -> Text:
    rec = outcome.record
    text = Text()
    for i, c in enumerate(rec.controls):
        text.append(", " if i else "")
        text.append(f"{c.verdict} ")
        text.append("✓" if c.as_required else "✗", style="green" if c.as_required else "red")
    if not rec.controls:
        text.append("-")
    if not all(c.as_required for c in rec.controls):
        text.append(" (control missed)", style="red")
    return text


def _verdict_table(outcomes: list[TaskOutcome], bad_specs: list[SpecError]) -> Table:
    table = Table(title="theorybench verdicts", show_lines=False)
    for col in ("claim", "verdict", "status", "expected", "effect", "CI", "control", "wall s"):
        table.add_column(col, overflow="fold")
    for out in outcomes:
        rec = out.record
        rule = headline(rec)
        ci = (f"[{fmt(rule.get('ci_low'))}, {fmt(rule.get('ci_high'))}]" if rule else "-")
        table.add_row(Text(rec.task_id), _verdict(rec.verdict),
                      Text(", ".join(rec.statuses) or "-"), Text(fmt(rec.expected_verdict)),
                      Text(fmt(rule.get("effect"))), Text(ci), _control_cell(out),
                      f"{rec.wall_s:.1f}")
    for bad in bad_specs:
        table.add_row(Text(bad.file), _verdict("error"), "-", "-", "-", "-", "-", "-")
    return table


@app.command("run")
def run(
    name: str = typer.Argument(..., help="a suite name, a task id, or a spec file"),
    profile: str = typer.Option(None, help=f"one of {PROFILES}; default: the suite's, or smoke"),
    device: str = typer.Option("auto", help=f"one of {DEVICE_CHOICES}"),
    seeds: int = typer.Option(None, min=1, help="override the number of seeds"),
    jobs: int = typer.Option(None, min=1, help="cells run side by side (worker processes; "
                             "default: the cores this process may use)"),
    results_dir: Path = typer.Option(None, help="where records go (default results/runs)"),
    no_record: bool = typer.Option(False, "--no-record", help="write no run record"),
    data_root: Path = typer.Option(None, help="folder of local torchvision data sets "
                                   "(CIFAR-10, MNIST) for paper profiles; never downloaded"),
    seed_offset: int = typer.Option(None, min=0, help="first seed (default: the spec's published "
                                    "block); 2000-9999 for pilots (see README: seed blocks)"),
    allow_expensive: bool = typer.Option(False, "--allow-expensive",
                                         help="run specs whose estimated cost exceeds the "
                                         "profile's budget"),
    executor_name: str = typer.Option("local", "--executor",
                                      help="local (this machine) or dask (a Dask cluster)"),
    scheduler: str = typer.Option(None, help="Dask scheduler address (tcp://HOST:PORT); "
                                  "without it --executor dask starts a local cluster of --jobs "
                                  "workers on 127.0.0.1"),
    no_cache: bool = typer.Option(False, "--no-cache", help="compute every cell; read and "
                                  "write no cell cache"),
    cache_dir: Path = typer.Option(None, help="cell cache folder (default "
                                   "$THEORYBENCH_CACHE_DIR or results/cache)"),
    threads: int = typer.Option(None, min=1, help="torch threads per cell (default: chosen "
                                "per cell from the free cores; OMP_NUM_THREADS also wins)"),
    cell_timeout: float = typer.Option(None, min=0.001, help="seconds a cell may run before it "
                                       "becomes an error (default: the spec's cell_timeout_s)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="run every cell once at tiny sizes "
                                 f"({DRY_RUN_SEEDS} seeds, one step, CPU-sized) to exercise "
                                 "code paths; no record, no cache, verdicts meaningless"),
    include: list[Path] = typer.Option(None, "--include", help=INCLUDE_HELP),
) -> None:
    """Run a suite or a task, print the verdict table, write one record per task and rebuild
    the leaderboard (results/site/) when the records went to results/runs/."""
    if profile is not None and profile not in PROFILES:
        raise _fail(f"--profile must be one of {PROFILES}, got {profile!r}")
    if device not in DEVICE_CHOICES:
        raise _fail(f"--device must be one of {DEVICE_CHOICES}, got {short(device)}")
    if executor_name not in ("local", "dask"):
        raise _fail(f"--executor must be local or dask, got {short(executor_name)}")
    if scheduler and executor_name != "dask":
        raise _fail("--scheduler needs --executor dask")
    if executor_name == "local":  # a cluster's workers may have the device this machine lacks
        try:
            resolve_device(device)
        except ValueError as exc:
            raise _fail(f"--device {device}: {exc}") from None
    if seeds is not None and seeds > MAX_SEEDS:
        raise _fail(f"--seeds must be at most {MAX_SEEDS}, got {seeds}")
    _include(include)
    try:
        target = _target(name, profile)
    except SpecError as exc:
        raise _fail(str(exc)) from None
    if dry_run:
        no_record, no_cache = True, True
        seeds = min(seeds or DRY_RUN_SEEDS, DRY_RUN_SEEDS)
    cache = None if no_cache else (cache_dir or default_cache_dir()).resolve()
    bad: list[SpecError] = []
    tasks = []
    for path in target.paths:
        try:
            task = load_task(path, allow_expensive=allow_expensive)
            if not allow_expensive and seeds is not None:
                budget = Problems(path)
                for field, message in cost.over_budget(resolve(task, target.profile, seeds),
                                                       target.profile):
                    budget.add(f"{field} (with --seeds {seeds})", message)
                budget.raise_if_any()
            tasks.append(task)
        except SpecError as exc:
            for problem in exc.problems:
                _say("spec error:", "bold red", problem.line)
            bad.append(exc)
    jobs = jobs or available_cores()
    executor: Executor = (DaskExecutor(scheduler, jobs, threads, use_gpus=device != "cpu")
                          if executor_name == "dask" else LocalExecutor(jobs, threads))
    planned = [plan_task(task, target.profile, device=device, seeds=seeds, suite=target.suite,
                         concurrent=executor.concurrent, results_dir=results_dir,
                         write=not no_record, data_root=str(data_root) if data_root else None,
                         seed_offset=seed_offset, cache_dir=cache, threads=threads,
                         cell_timeout=cell_timeout, dry_run=dry_run) for task in tasks]
    eta = Eta(executor.concurrent)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[eta]}"))
    finished: dict[str, TaskOutcome] = {}
    with executor_closed(executor), Progress(*columns, console=console,
                                             transient=True) as progress:
        bar = progress.add_task(name, total=None, eta="")

        def plan(cells: list, expected: list) -> None:
            progress.update(bar, total=len(cells), eta=eta.plan(cells, expected))

        def advance(task: PlannedTask, out: CellOutput) -> None:
            progress.update(bar, advance=1, eta=eta.done(out))
            if out.error:
                _say("cell error", "red", f"{out.cell.task_id}: {out.error}", progress.console)

        for outcome in run_tasks(planned, executor, on_cell=advance, on_plan=plan):
            record = outcome.record
            finished[record.task_id] = outcome
            progress.console.print(Text(f"{record.task_id}: {record.verdict} "
                                        f"({record.wall_s:.1f} s)"))
    outcomes = [finished[task.spec.id] for task in tasks]
    console.print(_verdict_table(outcomes, bad))
    written = [o.path for o in outcomes if o.path]
    if written:
        console.print(Text(f"{len(written)} record(s) written to {written[0].parent}"))
        _rebuild_site(results_dir)
    failed = [o.record for o in outcomes if o.record.verdict == "error"]
    if dry_run:  # verdicts of capped cells mean nothing: only cell errors fail a dry run
        failed = [o.record for o in outcomes if any(c.error for c in o.record.cells)]
    for rec in failed:
        _say(f"{rec.task_id}:", "bold red", rec.error)
    if bad:
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)


@contextmanager
def executor_closed(executor: Executor):
    """Close the executor (stopping a local Dask cluster) however the run ends."""
    try:
        yield executor
    finally:
        executor.close()


cache_app = typer.Typer(no_args_is_help=True, help="The cell cache (results/cache by default).")
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info(cache_dir: Path = typer.Option(None, help="cache folder (default "
                                              "$THEORYBENCH_CACHE_DIR or results/cache)")):
    """Entries per experiment kind, the judgments kept beside them, and the cache's size."""
    info = CellCache(cache_dir).info()
    console.print(Text(f"{info['folder']}: {info['entries']} entries, "
                       f"{info['bytes'] / 1e6:.1f} MB"))
    for kind, n in info["kinds"].items():
        console.print(Text(f"  {kind}: {n}"))
    console.print(Text(f"  judgments of arms: {info['judgments']}"))
    if info["stray_temporary_files"]:
        console.print(f"  {info['stray_temporary_files']} temporary file(s) left by "
                      "interrupted runs (removed by `theorybench cache clear`)", highlight=False)


@cache_app.command("clear")
def cache_clear(cache_dir: Path = typer.Option(None, help="cache folder (default "
                                               "$THEORYBENCH_CACHE_DIR or results/cache)")):
    """Remove every cached cell and judgment."""
    cache = CellCache(cache_dir)
    console.print(Text(f"removed {cache.clear()} file(s) from {cache.folder}"))


@app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(None, help="spec files (default: all tasks)"),
    runs: Path = typer.Option(None, "--runs-dir", help="records that published verdicts must "
                              "name (default results/runs)"),
    allow_expensive: bool = typer.Option(False, "--allow-expensive",
                                         help="do not check costs against the budgets"),
    include: list[Path] = typer.Option(None, "--include", help=INCLUDE_HELP),
):
    """Check task and suite specs, and that every published verdict names the record that
    measured it; one line per problem, each naming the file and the field."""
    from theorybench.status import published_problems, records_by_id

    _include(include)
    files = paths or [*task_paths(), *sorted((tasks_dir().parent / "suites").glob("*.yaml"))]
    problems = 0
    records: dict | None = None
    for path in files:
        try:
            if path.parent.name == "suites":
                suite = load_suite(path)
                _include(suite_includes(suite, path))
                suite_tasks(suite, path)
            else:
                task = load_task(path, allow_expensive=allow_expensive)
                if task.spec.expected_verdict:
                    records = records_by_id(runs or runs_dir()) if records is None else records
                    found = Problems(path)
                    for field, message in published_problems(task, records):
                        found.add(field, message)
                    found.raise_if_any()
        except SpecError as exc:
            problems += 1
            for problem in exc.problems:
                err_console.print(Text(problem.line), highlight=False, soft_wrap=True)
    console.print(f"{len(files) - problems} of {len(files)} spec file(s) valid")
    if problems:
        raise typer.Exit(2)


@app.command("list")
def list_(results_dir: Path = typer.Option(None, help="records folder (default results/runs)")):
    """Tasks and suites, with each task's last verdict."""
    skipped: list[str] = []
    history = load_history(results_dir or runs_dir(), skipped)
    for message in skipped:
        _say("warning:", "yellow", message)
    last = history.groupby("task_id").tail(1).set_index("task_id") if len(history) else None
    table = Table(title="tasks")
    for col in ("task", "title", "last verdict", "profile", "when"):
        table.add_column(col, overflow="fold")
    for path in task_paths():
        task_id = task_id_of(path)
        try:
            title = Text(load_task(path, allow_expensive=True).spec.title)
        except SpecError as exc:
            title = Text(f"invalid: {exc.field}: {exc.message}", style="red")
        if last is not None and task_id in last.index:
            row = last.loc[task_id]
            table.add_row(Text(task_id), title, _verdict(row["verdict"]), Text(str(row["profile"])),
                          Text(str(row["started"])))
        else:
            table.add_row(Text(task_id), title, "-", "-", "-")
    console.print(table)
    suites = sorted((tasks_dir().parent / "suites").glob("*.yaml"))
    console.print(Text("suites: " + ", ".join(p.stem for p in suites)))


@app.command("show")
def show(task_id: str = typer.Argument(..., help="a task id or spec file"),
         include: list[Path] = typer.Option(None, "--include", help=INCLUDE_HELP)):
    """A task's claim, source, experiment, rules, controls and profiles."""
    _include(include)
    try:
        task = load_task(_task_path(task_id), allow_expensive=True)
    except SpecError as exc:
        raise _fail(str(exc)) from None
    s = task.spec

    def line(label: str, text: str) -> None:
        console.print(Text.assemble((label, "bold"), text), highlight=False)

    line(s.id, f" v{s.version}: {s.title}")
    line("claim:", f" {s.claim.strip()}")
    line("source:", f" {s.source.paper} ({s.source.where})")
    if s.regime:
        line("regime:", f" {s.regime}")
    if s.out_of_regime:
        line("out of regime:", f" {s.out_of_regime}")
    line("experiment:", f" {s.experiment.kind} params={s.experiment.params} "
                        f"sweep={s.experiment.sweep} seeds={s.experiment.seeds}")
    for r in task.rules:
        line("", f"  rule {r.model_dump(exclude_defaults=True)}")
    for c in s.controls:
        line("control", f" {c.name}: override {c.override} must be {c.verdict} — "
                        f"{c.description}")
    for name, prof in s.profiles.items():
        pub = s.expected_verdict.get(name)
        line("profile", f" {name}: {prof.model_dump(exclude_defaults=True)}; "
                        + (f"published verdict {pub.verdict} (record {pub.record})" if pub
                           else "unmeasured"))
    line("", f"spec sha256 {task.sha256}")


def _rebuild_site(results_dir: Path | None) -> None:
    """After ``run``: rebuild ``results/site/`` from ``results/runs/``; a failure only warns.
    Records written elsewhere (``--results-dir``) are published with ``theorybench publish``."""
    from theorybench.paths import site_dir

    if results_dir is not None and results_dir.resolve() != runs_dir().resolve():
        console.print(Text(f"site not rebuilt (records are in {results_dir}); to see them: "
                           f"theorybench publish --results-dir {results_dir} --out DIR"),
                      highlight=False)
        return
    try:
        from theorybench.leaderboard import build_site

        site = build_site(runs_dir(), site_dir())
    except Exception as exc:  # noqa: BLE001  (the run's records are written; the site can wait)
        _say("warning:", "yellow", f"the site was not rebuilt: {short(str(exc), 300, raw=True)}")
        return
    for note in site.notes:
        if note.startswith("skipped "):
            _say("warning:", "yellow", note)
    console.print(Text(f"site rebuilt: {site.index}"), highlight=False)


@app.command("publish")
def publish(
    results_dir: Path = typer.Option(None, help="records folder (default results/runs)"),
    out: Path = typer.Option(None, help="site folder (default results/site)"),
) -> None:
    """Build the static leaderboard site from every run record. With the specs at hand
    (``tasks/``), the adoption log beside the records first learns what they publish and
    withdraw (``specstore.sync_adoptions``)."""
    from theorybench.leaderboard import SiteError, build_site
    from theorybench.paths import site_dir
    from theorybench.specstore import sync_adoptions

    records = results_dir or runs_dir()
    if tasks_dir().is_dir() and records.is_dir():
        appended = sync_adoptions(tasks_dir(), records)
        if appended:
            console.print(Text(f"adoption log: {appended} line(s) appended from the specs"))
    try:
        site = build_site(records, out or site_dir())
    except SiteError as exc:
        raise _fail(str(exc)) from None
    for note in site.notes:
        _say("warning:" if note.startswith("skipped ") else "note:", "yellow", note)
    console.print(Text(f"{len(site.pages)} claim page(s) from {site.n_records} record(s): "
                       f"{site.index}"), highlight=False)


@app.command("serve")
def serve(
    folder: Path = typer.Option(None, "--dir", help="site folder (default results/site)"),
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default)"),
    port: int = typer.Option(8000, min=0, max=65535, help="port (0: any free port)"),
) -> None:
    """Serve the built site over HTTP until interrupted (Ctrl-C)."""
    from theorybench.leaderboard.serve import base_url, make_server
    from theorybench.paths import site_dir

    if not _is_loopback(host):
        _say("warning:", "yellow", f"--host {host} is not a loopback address: anyone who can "
             "reach this machine can read the site")
    try:
        server = make_server(folder or site_dir(), host, port, quiet=False)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    console.print(Text(f"serving {folder or site_dir()} at {base_url(server)} (Ctrl-C stops)"),
                  highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("replicate")
def replicate(
    name: str = typer.Argument(..., help="a suite name, a task id, or a spec file"),
    blocks: int = typer.Option(1, min=1, help="fresh seed blocks (replication blocks 0..B-1)"),
    profile: str = typer.Option(None, help=f"one of {PROFILES}; default: the suite's, or smoke"),
    device: str = typer.Option("auto", help=f"one of {DEVICE_CHOICES}"),
    jobs: int = typer.Option(None, min=1, help="cells run side by side (worker processes; "
                             "default: the cores this process may use)"),
    results_dir: Path = typer.Option(None, help="where records go (default results/runs)"),
    no_record: bool = typer.Option(False, "--no-record", help="write no run record"),
    include: list[Path] = typer.Option(None, "--include", help=INCLUDE_HELP),
) -> None:
    """Run each task on fresh seed blocks (seeds 10000 + 1000 b onwards) and report, per claim
    and per control, whether the published verdict replicates. Exit 1 when one does not."""
    from theorybench.replication import known_records, replicate_task

    _include(include)
    if profile is not None and profile not in PROFILES:
        raise _fail(f"--profile must be one of {PROFILES}, got {profile!r}")
    try:
        target = _target(name, profile)
        tasks = [load_task(p) for p in target.paths]
    except SpecError as exc:
        raise _fail(str(exc)) from None
    records = known_records(runs_dir(), results_dir)
    table = Table(title=f"replication on {blocks} fresh seed block(s)")
    for col in ("claim", "reference", "verdict", "blocks", "claim replicates", "controls"):
        table.add_column(col, overflow="fold")
    failed = False
    with executor_closed(LocalExecutor(jobs or available_cores())) as executor:
        for task in tasks:
            with console.status(f"{task.spec.id}: {blocks} block(s)"):
                rep = replicate_task(task, target.profile, blocks, records=records,
                                     results_dir=results_dir, write=not no_record, device=device,
                                     suite=target.suite, executor=executor)
            failed = failed or not rep.replicates
            controls = Text()
            for i, (control, same) in enumerate(rep.controls.items()):
                controls.append((", " if i else "") + f"{control} ")
                controls.append(_mark(same))
            table.add_row(Text(task.spec.id), Text(rep.reference_source),
                          _verdict(rep.reference.get("verdict")),
                          Text(", ".join(str(b.get("verdict")) for b in rep.blocks)),
                          _mark(rep.claim_replicates), controls if rep.controls else "-")
    console.print(table)
    if failed:
        raise typer.Exit(1)


@app.command("adopt")
def adopt(records: list[Path] = typer.Argument(..., help="record files of the published "
                                                "block")) -> None:
    """Publish each record's verdict: write ``expected_verdict.<profile>`` = {verdict, record}
    into its task's spec file (only that block is rewritten). Refuses replications, pilots,
    errors, and records of another version of the spec."""
    import json

    from theorybench.specstore import record_adoption
    from theorybench.status import adopt_problem, with_published

    refused = 0
    for path in records:
        try:
            record = json.loads(path.read_text())
            task = load_task(tasks_dir() / f"{record['task_id']}.yaml")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _say(f"{path}:", "bold red", f"cannot be read as a record: {exc}")
            refused += 1
            continue
        except SpecError as exc:
            _say(f"{path}:", "bold red", exc)
            refused += 1
            continue
        problem = adopt_problem(record, task)
        if problem:
            _say(f"{path}:", "bold red", problem)
            refused += 1
            continue
        text = task.path.read_text()
        task.path.write_text(with_published(text, str(record["profile"]),
                                            str(record["verdict"]), str(record["run_id"])))
        record_adoption(record, path.parent)
        console.print(Text(f"{task.path}: expected_verdict.{record['profile']} = "
                           f"{record['verdict']} (record {record['run_id']})"), soft_wrap=True)
    if refused:
        raise typer.Exit(2)


@app.command("power")
def power_(
    source: str = typer.Argument(..., help="a record file or run id, or a task id (its latest "
                                 "pilot record)"),
    seeds: str = typer.Option(None, help="seed counts to try, comma-separated "
                              "(default 3 ... 4 x the pilot's)"),
    draws: int = typer.Option(100, min=10, help="bootstrap draws per seed count"),
    target: float = typer.Option(0.9, min=0.5, max=0.999, help="probability to reach"),
    results_dir: Path = typer.Option(None, help="records folder (default results/runs)"),
) -> None:
    """Estimate from a pilot record how likely its verdict (and its controls' outcomes) is to
    replicate with n seeds, and the smallest n reaching the target."""
    import json

    from theorybench.replication import default_seed_counts, is_pilot, known_records, power

    record = None
    path = Path(source)
    if path.suffix == ".json" and path.is_file():
        record = json.loads(path.read_text())
    else:
        records = known_records(results_dir or runs_dir())
        by_id = [r for r in records if str(r.get("run_id")).startswith(source)]
        of_task = [r for r in records if r.get("task_id") == source and r.get("verdict") != "error"]
        pilots = [r for r in of_task if is_pilot(r)]
        record = (by_id or pilots or of_task or [None])[-1]
        if record is not None and not by_id and not pilots:
            _say("note:", "yellow", f"no pilot record of {source}; using record "
                 f"{record['run_id'][:8]} ({record.get('purpose') or 'published'})")
    if record is None:
        raise _fail(f"no record or task named {source!r} with a record")
    pilot_n = len(record.get("seeds") or [])
    try:
        counts = ([int(n) for n in seeds.split(",")] if seeds else default_seed_counts(pilot_n))
        result = power(record, counts, draws, target)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=Text(f"{result.task_id}: chance that '{result.verdict}' replicates "
                        f"(bootstrap over the {pilot_n} seeds of record {result.run_id[:8]}, "
                        f"{draws} draws)"))
    for col in ("seeds", "claim verdict", "claim and controls"):
        table.add_column(col)
    for row in result.rows:
        table.add_row(str(row.seeds), f"{row.claim:.2f}", f"{row.joint:.2f}")
    console.print(table)
    smallest = result.smallest
    console.print(Text(f"smallest seed count reaching {target:.0%}: "
                       f"{smallest if smallest is not None else 'none of ' + str(counts)}"))


if __name__ == "__main__":  # python -m theorybench.cli
    app()
