"""What a person sees: suite reports in a real, offline Chromium, and a runbook run in JupyterLab.

Debian's chromium is installed with apt when missing (never a browser download) and driven
by Playwright for Python with ``executable_path``. Screenshots land in
``test-output/screenshots/`` (git-ignored) so a human can look at them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pgrunbooks.sandbox import free_port

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parents[1]
SCREENSHOTS = PROJECT / "test-output" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the rest keep it off this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
# Marks plotly draws for the chart types the runbooks use.
PLOT_MARKS = ".scatterlayer .trace path, .barlayer .point path, .pielayer .slice path, .heatmaplayer image, .treemaplayer path"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.skip("Debian's chromium is not installed and installing it needs root: apt-get install chromium")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True, timeout=300)
        done = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"apt-get install chromium failed:\n{done.stderr[-2000:]}"
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


SUITES = ("daily", "weekly", "monthly")
REPORT_BUDGET_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="session")
def suite_reports(demo_sandbox, tmp_path_factory) -> list[Path]:
    """One run of each suite against the seeded sandbox, all three at once (they only read the data);
    their run directories."""
    out = tmp_path_factory.mktemp("reports")
    env = dict(os.environ, PGRUNBOOKS_HOME=str(demo_sandbox))
    procs = {
        suite: subprocess.Popen(
            [sys.executable, "-m", "pgrunbooks", "suite", suite, "--out", str(out / suite), "--fail-on", "none",
             "--no-history"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT,
        )
        for suite in SUITES
    }
    runs = []
    for suite, proc in procs.items():
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, output
        (run,) = [p for p in (out / suite).iterdir() if p.is_dir()]
        runs.append(run)
    return runs


def _open_offline(browser, url: str):
    """A page with networking off that records console errors and any non-local request."""
    context = browser.new_context(offline=True, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    problems: dict[str, list[str]] = {"external": [], "console": []}

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            problems["external"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: problems["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems["console"].append(str(e)))
    page.goto(url)
    page.wait_for_load_state("load")
    return context, page, problems


def test_suite_reports_render_offline_with_every_chart(browser, suite_reports):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = [html for run in suite_reports for html in sorted(run.glob("*.html"))]
    assert sum(p.name == "index.html" for p in pages) == len(SUITES) and len(pages) >= 2 * len(SUITES)
    charts_seen = 0
    for html in pages:
        # plotly.js is inlined once per report (about 4.6 MB raw); the budget keeps reports mailable.
        assert html.stat().st_size < REPORT_BUDGET_BYTES, f"{html.name} is {html.stat().st_size:,} bytes"
        name = f"{html.parent.parent.name}-index" if html.stem == "index" else html.stem  # suite dir / run dir / page
        shot = SCREENSHOTS / f"report-{name}.png"
        context, page, problems = _open_offline(browser, html.as_uri())
        try:
            # .pgrb-plot is every chart the report holds, drawn or not.
            plots = page.locator(".pgrb-plot")
            if plots.count():
                page.wait_for_function("document.documentElement.dataset.pgrbPlots !== undefined", timeout=15_000)
                assert page.evaluate("document.documentElement.dataset.pgrbPlots") == "drawn", html.name
            for i in range(plots.count()):
                plot = plots.nth(i)
                assert plot.locator("svg.main-svg").count() > 0, f"{html.name}: chart {i} has no SVG"
                assert plot.locator(PLOT_MARKS).count() > 0, f"{html.name}: chart {i} drew no marks"
            charts_seen += plots.count()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
        assert not problems["external"], f"{html.name} requested {problems['external']}"
        assert not problems["console"], f"{html.name} logged console errors: {problems['console']}"
    assert charts_seen > 0, "the suite reports should contain charts"


def test_report_banner_is_at_the_top(browser, suite_reports):
    report = next(p for p in sorted(suite_reports[0].glob("*.html")) if p.name != "index.html")
    context, page, _ = _open_offline(browser, report.as_uri())
    try:
        banner = page.locator(".pgrb-banner").first
        assert banner.is_visible()
        assert banner.bounding_box()["y"] < 300
    finally:
        context.close()


@pytest.fixture
def jupyterlab(demo_sandbox, tmp_path):
    """JupyterLab on a loopback port with a token, serving a copy of the runbooks."""
    root = tmp_path / "lab"
    shutil.copytree(PROJECT / "runbooks", root / "runbooks")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, PGRUNBOOKS_HOME=str(demo_sandbox), JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "lab.log").read_text()
            assert time.monotonic() < deadline, "jupyter lab did not start in 60 s"
            time.sleep(0.5)
    try:
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_runbook_runs_in_jupyterlab_without_errors(browser, jupyterlab):
    base, token = jupyterlab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{base}/lab/tree/runbooks/daily/health_overview.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        # Several elements say "Idle" (some only for screen readers): wait for one a user sees.
        page.wait_for_selector("text=/Idle/ >> visible=true", timeout=60_000)  # kernel ready
        page.locator(".jp-Notebook").first.click()
        page.get_by_role("menuitem", name="Run").click()
        page.get_by_text("Run All Cells", exact=True).click()
        # Running cells show "[*]"; done when every code cell has a number and the kernel is idle again.
        page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
                return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));
            }""",
            timeout=180_000,
        )
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-health_overview.png"), full_page=False)
        errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        tracebacks = [errors.nth(i).inner_text() for i in range(errors.count())]
        assert not [t for t in tracebacks if "Traceback" in t or "Error" in t], tracebacks
        assert page.locator(".pgrb-findings").count() > 0, "the findings table did not appear"
    finally:
        context.close()
