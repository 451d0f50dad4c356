"""The widgets in a real JupyterLab, driven by Playwright in Debian's chromium.

Needs ``/usr/bin/chromium`` and the ``playwright`` Python package: run
``scripts/playwright-setup.sh`` (it never downloads a browser build). The test
starts ``jupyter lab`` on a free port with a random token, opens a notebook that
starts an instance, submits jobs and shows a JobBrowser and a ResourceBrowser,
runs all cells, waits for a row to reach CD and for the plotly figure, and saves
``test-artifacts/jupyterlab.png``.

``FLUXNB_LAB_NOTEBOOK=path/to/notebook.ipynb`` runs another notebook instead of
tutorial 02 (``generated``: the one made of ``CELLS``); it must show both widgets.

``test_jobgrid_in_jupyterlab`` drives the JobBrowser's grid as a user does: sorts by
a column, filters by state and by text, selects a job and reads its output; it saves
``test-artifacts/jupyterlab-grid.png``. ``test_converged_computing_tutorial_in_jupyterlab``
runs tutorial 10 and waits for its six plotly figures (``jupyterlab-fluence.png``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SETUP_HINT = "run scripts/playwright-setup.sh (as root) to install Debian's chromium and playwright"

CELLS = [
    "%load_ext fluxnb",
    "%flux start --test-size=4",
    "%flux submit --job-name=hello echo hello\n",
    "%flux submit -n2 --job-name=short sleep 0.5",
    "%flux submit -n4 --job-name=long --setattr=system.exec.test.run_duration=120s sleep 120",
    "import fluxnb.widgets\nfluxnb.widgets.JobBrowser()",
    "fluxnb.widgets.ResourceBrowser()",
]


def require_browser():
    """Fail (not skip) with what to run when chromium or playwright is missing."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright")
    if missing:
        pytest.fail(f"missing {' and '.join(missing)}: {SETUP_HINT}", pytrace=False)


def write_notebook(path: Path) -> Path:
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nbformat.write(nb, str(path))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A ``jupyter lab`` server in a subprocess, isolated from the user's settings."""

    def __init__(self, root: Path, home: Path, extra_env: dict | None = None):
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.pop("FLUX_URI", None)
        env.update(extra_env or {})   # e.g. FLUX_URI of a real Flux (tests/realflux)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env["JUPYTER_CONFIG_DIR"] = str(home / "config")
        env["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
        env["JUPYTERLAB_SETTINGS_DIR"] = str(home / "settings")
        # no "official Jupyter news?" toast over the screenshot
        news = home / "settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        env["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "workspaces")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.log = open(home / "jupyter.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}",
             "--ip=127.0.0.1", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.open_browser=False", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {self.proc.returncode}:\n{self.output()}")
            try:
                self.api("/api/status")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        pytest.fail(f"jupyter lab did not answer within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.api("/api/shutdown", method="POST")
                self.proc.wait(timeout=20)
            except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture
def notebook(tmp_path) -> Path:
    """The notebook to run: $FLUXNB_LAB_NOTEBOOK (copied) or one generated from CELLS."""
    root = tmp_path / "lab"
    root.mkdir()
    given = os.environ.get("FLUXNB_LAB_NOTEBOOK", "tutorials/02-submitting-jobs.ipynb")
    if given == "generated":
        return write_notebook(root / "widgets.ipynb")
    src = Path(given) if os.path.isabs(given) else ROOT / given
    # the tutorial runs its helper scripts from its own folder: bring them along
    for helper in src.parent.glob("*.sh"):
        shutil.copy(helper, root / helper.name)
    return Path(shutil.copy(src, root / src.name))


def test_widgets_render_in_jupyterlab(notebook, tmp_path):
    in_lab(notebook, tmp_path, "jupyterlab.png", run_notebook)


def test_jobgrid_in_jupyterlab(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    in_lab(write_notebook(root / "widgets.ipynb"), tmp_path, "jupyterlab-grid.png", drive_grid)


def test_converged_computing_tutorial_in_jupyterlab(tmp_path):
    """Tutorial 10 (Fluence vs kube-scheduler) runs in JupyterLab and draws its six figures."""
    root = tmp_path / "lab"
    root.mkdir()
    nb = Path(shutil.copy(ROOT / "tutorials" / "10-converged-computing.ipynb",
                          root / "10-converged-computing.ipynb"))
    in_lab(nb, tmp_path, "jupyterlab-fluence.png", run_figures)


def run_figures(page, lab: Lab, name: str, expect) -> None:
    run_all(page, lab, name)
    expect(page.locator(".jp-InputPrompt", has_text="[*]")).to_have_count(0, timeout=180_000)
    wait_kernel_idle(lab, timeout=120)
    # JupyterLab renders outputs as their cells come into view: visit every cell once
    cells = page.locator(".jp-Notebook .jp-Cell")
    for i in range(cells.count()):
        cells.nth(i).scroll_into_view_if_needed()
    figures = page.locator(".jp-RenderedPlotly")           # jupyterlab-plotly's renderer
    expect(figures).to_have_count(6, timeout=60_000)
    for i in range(6):                                       # each one drawn, not just placed
        figures.nth(i).scroll_into_view_if_needed()
        expect(figures.nth(i).locator(".main-svg").first).to_be_attached(timeout=30_000)
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).filter(has_text="Traceback").count() == 0
    figures.first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)


def in_lab(notebook: Path, tmp_path: Path, shot_name: str, drive, extra_env: dict | None = None,
           height: int = 2200) -> None:
    """Start JupyterLab on ``notebook``, let ``drive(page, lab, name, expect)`` work, screenshot.

    ``extra_env`` goes to the lab server (so to its kernels), e.g. a real Flux's FLUX_URI.
    """
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    home = tmp_path / "home"
    home.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / shot_name
    t0 = time.monotonic()
    lab = Lab(notebook.parent, home, extra_env=extra_env)
    try:
        lab.wait_ready()
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(home / "chromium"), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1400, "height": height})
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            try:
                drive(page, lab, notebook.name, expect)
                page.screenshot(path=str(shot))
            except BaseException:
                page.screenshot(path=str(ARTIFACTS / "jupyterlab-failure.png"))
                raise
            finally:
                ctx.close()
    finally:
        lab.stop()
    assert shot.stat().st_size > 10_000
    print(f"JupyterLab test took {time.monotonic() - t0:.1f}s; screenshot {shot}")


def run_all(page, lab: Lab, name: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    # the kernel must be up before Run All, or the first cells wait behind a dialog
    wait_kernel_idle(lab)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def run_notebook(page, lab: Lab, name: str, expect) -> None:
    run_all(page, lab, name)

    # a JobBrowser row reaches CD (driven by the instance's events)
    rows = page.locator(".fluxnb-jobtable .fluxnb-grid-body .fluxnb-st-CD")
    expect(rows).not_to_have_count(0, timeout=120_000)
    # the ResourceBrowser's plotly sunburst is drawn
    plot = page.locator(".fluxnb-resourcebrowser .js-plotly-plot")
    expect(plot.first).to_be_visible(timeout=90_000)
    # JupyterLab draws only the cells in view; Run All has scrolled on to the last one
    plot.first.scroll_into_view_if_needed()
    expect(page.locator(".fluxnb-resourcebrowser .sunburstlayer path").first).to_be_attached(timeout=30_000)
    expect(page.locator(".fluxnb-resourcebrowser")).to_contain_text(re.compile(r"\d+ free"))
    # nothing raised in any cell
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).filter(has_text="Traceback").count() == 0
    # (selecting a job is tested headless: the tutorial stops its instance at the end)
    page.locator(".fluxnb-resourcebrowser").scroll_into_view_if_needed()
    page.wait_for_timeout(500)   # let plotly finish its transition before the screenshot


def drive_grid(page, lab: Lab, name: str, expect) -> None:
    """Sort, filter by state and text, select the ``hello`` job and read its output."""
    run_all(page, lab, name)
    browser = page.locator(".fluxnb-jobbrowser")
    body = browser.locator(".fluxnb-grid-body")
    names = body.locator(".fluxnb-col-name")
    # the three jobs are listed, hello and short reach CD, long runs (test exec, 120s)
    expect(body.locator(".fluxnb-st-CD")).to_have_count(2, timeout=120_000)
    expect(body.locator(".fluxnb-st-R")).to_have_count(1)
    expect(browser.locator(".fluxnb-grid-counts")).to_contain_text("CD 2")
    # a busy kernel reads no widget messages: wait for every cell to have run
    expect(page.locator(".jp-InputPrompt", has_text="[*]")).to_have_count(0, timeout=120_000)
    wait_kernel_idle(lab, timeout=120)
    # sort by NAME (ascending), then again (descending)
    head = browser.locator(".fluxnb-grid-head [data-col=name]")
    head.click()
    expect(names).to_have_text(["hello", "long", "short"])
    expect(head).to_contain_text("▲")
    head.click()
    expect(names).to_have_text(["short", "long", "hello"])
    # the state filter: only the running job
    browser.locator(".widget-dropdown select").select_option("running")
    expect(names).to_have_text(["long"])
    browser.locator(".widget-dropdown select").select_option("all")
    expect(names).to_have_count(3)
    # the text filter
    search = browser.locator(".fluxnb-jobsearch input")
    search.fill("sho")
    expect(names).to_have_text(["short"])
    search.fill("")
    expect(names).to_have_count(3)
    # select the hello job: its output shows in the output tab
    body.locator(".fluxnb-grid-row", has_text="hello").click()
    expect(body.locator(".fluxnb-grid-row.selected")).to_contain_text("hello")
    browser.locator(".lm-TabBar-tab", has_text=re.compile(r"^output$")).click()
    expect(browser.locator(".widget-tab-contents, .jp-widgets-tab-contents, .lm-TabPanel-stackedPanel"
                           ).filter(has_text="0: hello").first).to_be_visible()
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).filter(has_text="Traceback").count() == 0
    browser.scroll_into_view_if_needed()


def wait_kernel_idle(lab: Lab, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kernels = lab.api("/api/kernels")
        except urllib.error.HTTPError as exc:
            # jupyter_server answers 500 to a listing made while a kernel starts (its
            # last_activity is not set yet, KeyError in the server's log): not idle yet
            if exc.code < 500:
                raise
            kernels = None
        if kernels and all(k.get("execution_state") == "idle" for k in kernels):
            return
        time.sleep(0.2)
    pytest.fail(f"the notebook's kernel was not idle within {timeout}s:\n{lab.output()}")
