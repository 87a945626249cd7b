"""The ``theorybench`` command: list, show, validate and run tasks and suites.

Exit status: 0 when every task ran (whatever its verdict), 1 when a task's verdict is ``error``,
2 for bad input (a malformed spec, an unknown task or suite).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from theorybench.cache import CellCache
from theorybench.cache import default_dir as default_cache_dir
from theorybench.device import DEVICE_CHOICES
from theorybench.dryrun import DRY_RUN_SEEDS
from theorybench.executors import DaskExecutor, Executor, LocalExecutor
from theorybench.paths import runs_dir, tasks_dir
from theorybench.progress import Eta
from theorybench.results import load_history
from theorybench.runner import CellOutput, TaskOutcome, run_task
from theorybench.spec import (
    PROFILES,
    SpecError,
    find_suite,
    load_suite,
    load_task,
    suite_tasks,
    task_id_of,
    task_paths,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Check claims of deep-learning theory against practice.")
# Piped output (CI logs) gets a wide table rather than rich's default of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

VERDICT_STYLE = {"holds": "green", "refuted": "red", "inconclusive": "yellow", "error": "bold red"}


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


@dataclass
class Target:
    """What ``run`` was asked for: task files, the profile, and the suite name if any."""

    paths: list[Path]
    profile: str
    suite: str | None


def _task_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = tasks_dir() / f"{name}.yaml"
    if path.is_file():
        return path
    raise _fail(f"no task or suite named {name!r} (see `theorybench list`)")


def _target(name: str, profile: str | None) -> Target:
    path = Path(name)
    suite_path = path if path.is_file() and path.parent.name == "suites" else find_suite(name)
    if suite_path is None:
        return Target([_task_path(name)], profile or "smoke", None)
    suite = load_suite(suite_path)
    return Target(suite_tasks(suite, suite_path), profile or suite.profile, suite.id)


def _fmt(x: object) -> str:
    return "-" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def _control_cell(outcome: TaskOutcome) -> str:
    rec = outcome.record
    parts = []
    for c in rec.controls:
        mark = "[green]✓[/]" if c.as_required else "[red]✗[/]"
        parts.append(f"{c.verdict} {mark}")
    text = ", ".join(parts) or "-"
    return text if rec.validated else f"{text} [red](unvalidated)[/]"


def _verdict_table(outcomes: list[TaskOutcome], bad_specs: list[SpecError]) -> Table:
    table = Table(title="theorybench verdicts", show_lines=False)
    for col in ("claim", "verdict", "expected", "effect", "CI", "control", "wall s"):
        table.add_column(col, overflow="fold")
    for out in outcomes:
        rec = out.record
        rule = rec.claim.rules[0] if rec.claim.rules else {}
        ci = (f"[{_fmt(rule.get('ci_low'))}, {_fmt(rule.get('ci_high'))}]" if rule else "-")
        style = VERDICT_STYLE.get(rec.verdict, "")
        table.add_row(rec.task_id, f"[{style}]{rec.verdict}[/]", _fmt(rec.expected_verdict),
                      _fmt(rule.get("effect")), ci, _control_cell(out), f"{rec.wall_s:.1f}")
    for bad in bad_specs:
        table.add_row(bad.file, "[bold red]error[/]", "-", "-", "-", "-", "-")
    return table


@app.command("run")
def run(
    name: str = typer.Argument(..., help="a suite name, a task id, or a spec file"),
    profile: str = typer.Option(None, help=f"one of {PROFILES}; default: the suite's, or smoke"),
    device: str = typer.Option("auto", help=f"one of {DEVICE_CHOICES}"),
    seeds: int = typer.Option(None, min=1, help="override the number of seeds"),
    jobs: int = typer.Option(1, min=1, help="worker processes for cells"),
    results_dir: Path = typer.Option(None, help="where records go (default results/runs)"),
    no_record: bool = typer.Option(False, "--no-record", help="write no run record"),
    data_root: Path = typer.Option(None, help="folder of local torchvision data sets "
                                   "(CIFAR-10, MNIST) for paper profiles; never downloaded"),
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
) -> None:
    """Run a suite or a task, print the verdict table, write one record per task and rebuild
    the leaderboard (results/site/) when the records went to results/runs/."""
    if profile is not None and profile not in PROFILES:
        raise _fail(f"--profile must be one of {PROFILES}, got {profile!r}")
    if device not in DEVICE_CHOICES:
        raise _fail(f"--device must be one of {DEVICE_CHOICES}, got {device!r}")
    try:
        target = _target(name, profile)
    except SpecError as exc:
        raise _fail(str(exc)) from None
    if executor_name not in ("local", "dask"):
        raise _fail(f"--executor must be local or dask, got {executor_name!r}")
    if scheduler and executor_name != "dask":
        raise _fail("--scheduler needs --executor dask")
    if dry_run:
        no_record, no_cache = True, True
        seeds = min(seeds or DRY_RUN_SEEDS, DRY_RUN_SEEDS)
    cache = None if no_cache else (cache_dir or default_cache_dir()).resolve()
    outcomes: list[TaskOutcome] = []
    bad: list[SpecError] = []
    executor: Executor = (DaskExecutor(scheduler, jobs, threads, use_gpus=device != "cpu")
                          if executor_name == "dask" else LocalExecutor(jobs, threads))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[eta]}"))
    with executor_closed(executor), Progress(*columns, console=console,
                                             transient=True) as progress:
        for path in target.paths:
            try:
                task = load_task(path)
            except SpecError as exc:
                err_console.print(f"[bold red]spec error:[/] {exc}", highlight=False)
                bad.append(exc)
                continue
            bar = progress.add_task(task.spec.id, total=None, eta="")
            eta = Eta(executor.concurrent)

            def advance(out: CellOutput, done: int, total: int, bar: int = bar,
                        eta: Eta = eta) -> None:
                progress.update(bar, completed=done, total=total, eta=eta.done(out))
                if out.error:
                    progress.console.print(f"[red]cell error[/] {out.cell.task_id}: {out.error}",
                                           highlight=False)

            def plan(cells: list, past: list, bar: int = bar, eta: Eta = eta) -> None:
                progress.update(bar, total=len(cells), eta=eta.plan(cells, past))

            outcome = run_task(task, target.profile, device=device, seeds=seeds,
                               suite=target.suite, executor=executor, results_dir=results_dir,
                               write=not no_record, on_cell=advance,
                               data_root=str(data_root) if data_root else None,
                               cache_dir=cache, threads=threads, cell_timeout=cell_timeout,
                               dry_run=dry_run, on_plan=plan)
            progress.remove_task(bar)
            outcomes.append(outcome)
    console.print(_verdict_table(outcomes, bad))
    written = [o.path for o in outcomes if o.path]
    if written:
        console.print(f"{len(written)} record(s) written to {written[0].parent}")
        _rebuild_site(results_dir)
    failed = [o.record for o in outcomes if o.record.verdict == "error"]
    if dry_run:  # verdicts of capped cells mean nothing: only cell errors fail a dry run
        failed = [o.record for o in outcomes if any(c.error for c in o.record.cells)]
    for rec in failed:
        err_console.print(f"[bold red]{rec.task_id}:[/] {rec.error}", highlight=False)
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
    """Entries per experiment kind and the cache's size."""
    info = CellCache(cache_dir).info()
    console.print(f"{info['folder']}: {info['entries']} entries, "
                  f"{info['bytes'] / 1e6:.1f} MB", highlight=False)
    for kind, n in info["kinds"].items():
        console.print(f"  {kind}: {n}", highlight=False)
    if info["stray_temporary_files"]:
        console.print(f"  {info['stray_temporary_files']} temporary file(s) left by "
                      "interrupted runs (removed by `theorybench cache clear`)", highlight=False)


@cache_app.command("clear")
def cache_clear(cache_dir: Path = typer.Option(None, help="cache folder (default "
                                               "$THEORYBENCH_CACHE_DIR or results/cache)")):
    """Remove every cached cell."""
    cache = CellCache(cache_dir)
    console.print(f"removed {cache.clear()} file(s) from {cache.folder}", highlight=False)


@app.command("validate")
def validate(paths: list[Path] = typer.Argument(None, help="spec files (default: all tasks)")):
    """Check task and suite specs; one line per malformed file."""
    files = paths or [*task_paths(), *sorted((tasks_dir().parent / "suites").glob("*.yaml"))]
    problems = 0
    for path in files:
        try:
            if path.parent.name == "suites":
                suite_tasks(load_suite(path), path)
            else:
                load_task(path)
        except SpecError as exc:
            problems += 1
            err_console.print(str(exc), highlight=False, soft_wrap=True)
    console.print(f"{len(files) - problems} of {len(files)} spec file(s) valid")
    if problems:
        raise typer.Exit(2)


@app.command("list")
def list_(results_dir: Path = typer.Option(None, help="records folder (default results/runs)")):
    """Tasks and suites, with each task's last verdict."""
    history = load_history(results_dir or runs_dir())
    last = history.groupby("task_id").tail(1).set_index("task_id") if len(history) else None
    table = Table(title="tasks")
    for col in ("task", "title", "last verdict", "profile", "when"):
        table.add_column(col, overflow="fold")
    for path in task_paths():
        task_id = task_id_of(path)
        try:
            title = load_task(path).spec.title
        except SpecError as exc:
            title = f"[red]invalid: {exc.field}: {exc.message}[/]"
        if last is not None and task_id in last.index:
            row = last.loc[task_id]
            style = VERDICT_STYLE.get(row["verdict"], "")
            table.add_row(task_id, title, f"[{style}]{row['verdict']}[/]", row["profile"],
                          row["started"])
        else:
            table.add_row(task_id, title, "-", "-", "-")
    console.print(table)
    suites = sorted((tasks_dir().parent / "suites").glob("*.yaml"))
    console.print("suites: " + ", ".join(p.stem for p in suites))


@app.command("show")
def show(task_id: str = typer.Argument(..., help="a task id or spec file")):
    """A task's claim, source, experiment, rules, controls and profiles."""
    try:
        task = load_task(_task_path(task_id))
    except SpecError as exc:
        raise _fail(str(exc)) from None
    s = task.spec
    console.print(f"[bold]{s.id}[/] v{s.version}: {s.title}")
    console.print(f"[bold]claim:[/] {s.claim.strip()}", highlight=False)
    console.print(f"[bold]source:[/] {s.source.paper} ({s.source.where})", highlight=False)
    if s.regime:
        console.print(f"[bold]regime:[/] {s.regime}", highlight=False)
    console.print(f"[bold]experiment:[/] {s.experiment.kind} params={s.experiment.params} "
                  f"sweep={s.experiment.sweep} seeds={s.experiment.seeds}", highlight=False)
    for r in task.rules:
        console.print(f"  rule {r.model_dump(exclude_defaults=True)}", highlight=False)
    for c in s.controls:
        console.print(f"[bold]control[/] {c.name}: override {c.override} must be {c.verdict}"
                      f" — {c.description}", highlight=False)
    for name, prof in s.profiles.items():
        console.print(f"[bold]profile[/] {name}: {prof.model_dump(exclude_defaults=True)}; "
                      f"published verdict {s.expected_verdict.get(name)}", highlight=False)
    console.print(f"spec sha256 {task.sha256}")


def _rebuild_site(results_dir: Path | None) -> None:
    """After ``run``: rebuild ``results/site/`` from ``results/runs/``; a failure only warns.
    Records written elsewhere (``--results-dir``) are published with ``theorybench publish``."""
    from theorybench.paths import site_dir

    if results_dir is not None and results_dir.resolve() != runs_dir().resolve():
        console.print(f"site not rebuilt (records are in {results_dir}); to see them: "
                      f"theorybench publish --results-dir {results_dir} --out DIR",
                      highlight=False)
        return
    try:
        from theorybench.leaderboard import build_site

        site = build_site(runs_dir(), site_dir())
    except Exception as exc:  # noqa: BLE001  (the run's records are written; the site can wait)
        err_console.print(f"[yellow]warning:[/] the site was not rebuilt: {exc}", highlight=False)
        return
    console.print(f"site rebuilt: {site.index}", highlight=False)


@app.command("publish")
def publish(
    results_dir: Path = typer.Option(None, help="records folder (default results/runs)"),
    out: Path = typer.Option(None, help="site folder (default results/site)"),
) -> None:
    """Build the static leaderboard site from every run record."""
    from theorybench.leaderboard import SiteError, build_site
    from theorybench.paths import site_dir

    try:
        site = build_site(results_dir or runs_dir(), out or site_dir())
    except SiteError as exc:
        raise _fail(str(exc)) from None
    for note in site.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"{len(site.pages)} claim page(s) from {site.n_records} record(s): {site.index}",
                  highlight=False)


@app.command("serve")
def serve(
    folder: Path = typer.Option(None, "--dir", help="site folder (default results/site)"),
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default)"),
    port: int = typer.Option(8000, min=0, max=65535, help="port (0: any free port)"),
) -> None:
    """Serve the built site over HTTP until interrupted (Ctrl-C)."""
    from theorybench.leaderboard.serve import base_url, make_server
    from theorybench.paths import site_dir

    try:
        server = make_server(folder or site_dir(), host, port, quiet=False)
    except OSError as exc:
        raise _fail(str(exc)) from None
    console.print(f"serving {folder or site_dir()} at {base_url(server)} (Ctrl-C stops)",
                  highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:  # pragma: no cover
    app()
