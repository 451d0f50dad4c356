"""JupyterLab started inside a real Flux: the magics and the JobBrowser, seen in Debian's chromium.

The lab server (so its kernel) inherits the real instance's ``FLUX_URI``, as it does when
started with ``flux start --test-size=4 jupyter lab``; the notebook has no ``%flux start``.
Saves ``test-artifacts/jupyterlab-realflux.png``.
"""

from __future__ import annotations

import re

import nbformat

from tests.realflux.test_realflux import real  # noqa: F401  (the module's real instance fixture)
from tests.widgets.test_jupyterlab import in_lab, run_all

CELLS = [
    "%load_ext fluxnb",
    "%flux status",
    "%flux run -n2 --label-io hostname",
    "%flux submit -n2 --job-name=short sleep 2",
    "%flux jobs -a",
    "import fluxnb.widgets\nfluxnb.widgets.JobBrowser()",
    "fluxnb.widgets.ResourceBrowser()",
]


def test_jobbrowser_on_real_flux_in_jupyterlab(real, tmp_path):  # noqa: F811
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3 (ipykernel)"}})
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nbformat.write(nb, str(root / "real.ipynb"))
    in_lab(root / "real.ipynb", tmp_path, "jupyterlab-realflux.png", drive_real,
           extra_env={"FLUX_URI": real.uri}, height=2000)


def drive_real(page, lab, name: str, expect) -> None:
    run_all(page, lab, name)
    outputs = page.locator(".jp-OutputArea-output")
    expect(outputs.filter(has_text="engine: flux-core")).not_to_have_count(0, timeout=90_000)
    # both lines of the run, each labelled with its task rank
    expect(outputs.filter(has_text=re.compile(r"0: \S+"))
           .filter(has_text=re.compile(r"1: \S+"))).not_to_have_count(0)
    expect(page.locator(".jp-OutputArea-output table.fluxnb-table")
           .filter(has_text="hostname")).not_to_have_count(0)
    # the JobBrowser's row of the submitted job reaches CD, from real events
    rows = page.locator(".fluxnb-jobtable .fluxnb-grid-body .fluxnb-grid-row.fluxnb-st-CD")
    expect(rows.filter(has_text="short")).not_to_have_count(0, timeout=60_000)
    expect(page.locator(".fluxnb-resourcebrowser")).to_contain_text(re.compile(r"core: 8 free"),
                                                                     timeout=120_000)
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).filter(has_text="Traceback").count() == 0
    page.locator(".fluxnb-jobbrowser").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
