"""``pytest -m suite``: the leaderboard published from the smoke suite's records, checked as files
and in a real browser.

The site is built from ``smoke_run.records_dir`` into ``$THEORYBENCH_SUITE_SITE`` when set (CI
keeps it), else a temporary folder; it is served on 127.0.0.1 (a free port, a server thread
stopped at the end) and driven with Playwright in headless Debian Chromium at
``/usr/bin/chromium`` (no browser download). The browser test is skipped only when that binary
is absent; ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from theorybench.leaderboard import Site, build_site
from theorybench.leaderboard.build import page_path
from theorybench.leaderboard.serve import serve_in_thread
from theorybench.paths import suites_dir, tasks_dir
from theorybench.spec import load_suite, load_task, suite_tasks, task_id_of, task_paths

pytestmark = pytest.mark.suite

SUITE = suites_dir() / "smoke.yaml"
TASK_IDS = [task_id_of(p) for p in suite_tasks(load_suite(SUITE), SUITE)]
#: The index's smoke rows: every task with a smoke profile, also those the suite leaves out
#: (``exclude:``), which the site lists as unmeasured.
SMOKE_ROWS = sorted(t.spec.id for t in map(load_task, task_paths(tasks_dir()))
                    if "smoke" in t.spec.profiles)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


@pytest.fixture(scope="module")
def smoke_site(smoke_run, tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = os.environ.get("THEORYBENCH_SUITE_SITE")
    out = Path(folder) if folder else tmp_path_factory.mktemp("published") / "site"
    return build_site(smoke_run.records_dir, out)


def test_the_site_has_a_row_a_page_and_figures_for_every_smoke_task(smoke_site: Site) -> None:
    html = smoke_site.index.read_text()
    for task_id in TASK_IDS:
        assert f'data-task="{task_id}" data-profile="smoke"' in html, task_id
    assert html.count('class="claim-row"') >= len(TASK_IDS)
    pages = [p for p in smoke_site.pages if p.endswith(".smoke.html")]
    assert len(pages) >= len(TASK_IDS)
    for rel in pages:
        page = smoke_site.path / rel
        text = page.read_text()
        figures = [f for f in page.parent.glob(f"{page.stem}.rule*.svg")]
        assert figures, f"{rel} has no rule figure"
        for figure in figures:
            assert figure.stat().st_size > 1000, figure
            assert figure.name in text
        assert (page.parent / f"{page.stem}.history.svg").is_file()
    assert (smoke_site.path / "history.html").is_file()


def test_the_site_shows_statuses_and_the_fresh_block(smoke_site: Site) -> None:
    html = smoke_site.index.read_text()
    assert 'id="profile-summary"' in html
    for task_id in TASK_IDS:
        row = html.split(f'data-task="{task_id}" data-profile="smoke"')[1].split("</tr>")[0]
        assert "unmeasured" in row or "replicated on a fresh seed block" in row, task_id
        page = (smoke_site.path / page_path(task_id, "smoke")).read_text()
        assert 'id="replication"' in page and ">10000<" in page, task_id


def walk(base_url: str, task_ids: list[str]) -> None:
    """A user's walk through the served site in headless Chromium: the index's rows, sorting,
    the filters, a claim page with its figures loaded, and the history page. Fails on any
    JavaScript error, failed request, or request that leaves the served site."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: None if r.url.startswith(base_url)
                    else problems.append(f"left the site: {r.url}"))

            page.goto(base_url + "index.html")
            rows = page.locator("#claims tbody tr:visible")
            assert rows.count() == len(SMOKE_ROWS)  # the smoke profile, shown by default
            shown = rows.evaluate_all("rs => rs.map(r => r.dataset.task)")
            assert sorted(shown) == SMOKE_ROWS
            assert page.locator(".count").inner_text().startswith(f"{len(SMOKE_ROWS)} of ")

            headers = page.locator("#claims th").all_inner_texts()
            page.locator("#claims th", has_text="wall s").click()
            by_column = "(rs, i) => rs.map(r => parseFloat(r.cells[i].dataset.value))"
            walls = rows.evaluate_all(by_column, headers.index("wall s"))
            measured = [w for w in walls if w == w]  # rows without a record (NaN) come last
            assert measured == sorted(measured) and walls[:len(measured)] == measured

            verdict = rows.first.get_attribute("data-verdict").split("|")[0]
            page.select_option("select[name=verdict]", verdict)
            verdicts = rows.evaluate_all("rs => rs.map(r => r.dataset.verdict)")
            assert verdicts and all(verdict in v.split("|") for v in verdicts)
            page.select_option("select[name=verdict]", "")
            page.fill("input[name=q]", task_ids[0])
            assert rows.count() == 1
            page.fill("input[name=q]", "no claim has this name")
            assert rows.count() == 0
            page.fill("input[name=q]", "")
            assert rows.count() == len(SMOKE_ROWS)

            link = page.locator(f'#claims tr[data-task="{task_ids[0]}"] a.claim-link')
            title = link.inner_text()
            link.click()
            page.wait_for_load_state("load")
            assert page.locator("h1#claim-title").inner_text() == title
            images = page.locator("img.plot")
            assert images.count() >= 2  # a rule figure and the history
            loaded = images.evaluate_all("is => is.map(i => i.complete && i.naturalWidth > 0)")
            assert all(loaded), loaded

            tag = page.locator("a.tag").first
            if tag.count():  # a tag on the claim page opens the index filtered by that tag
                name = tag.inner_text()
                tag.click()
                page.wait_for_load_state("load")
                tags = rows.evaluate_all("rs => rs.map(r => r.dataset.tags.split('|'))")
                assert tags and all(name in t for t in tags)

            page.locator("header nav a", has_text="history").click()
            page.wait_for_load_state("load")
            assert page.locator("#runs tbody tr").count() >= len(task_ids)
        finally:
            browser.close()
    assert not problems, problems


def test_a_browser_walks_the_served_site(smoke_site: Site) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} "
                    "(apt-get install chromium chromium-driver; .ci/run does it)")
    server, url = serve_in_thread(smoke_site.path)
    try:
        walk(url, TASK_IDS)
    finally:
        server.shutdown()
        server.server_close()
