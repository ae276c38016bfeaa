"""The dashboards in a real Chromium (Debian's, driven by Playwright) against `workbench serve` with
basic auth: numbers on the page equal the cube query's, widgets, drilling, downloads, links, roles.

Screenshots land in ``$WORKBENCH_SCREENSHOTS`` (default: ``workbench-screenshots`` in the
system's temporary folder, never the checkout); the docs' pictures come from there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from workbench.cubes import Query

from .conftest import DEMO_CATALOG, IN_CI
from .dashboards import CHROMIUM_ARGS, wait_until_idle

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tempfile.gettempdir()) / (
    "workbench-screenshots"
)
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    exe = shutil.which("chromium")
    if exe is None:
        message = "chromium is not installed (`apt-get install -y chromium`; .ci/run does it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def cube(demo):
    catalog, ws, _ = demo
    return wb.open_cube(catalog, ws, "flight_delays")


def signed_in(browser, served, user: str, path: str):
    """A fresh browser context signed in through the login form, at ``path``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{served.url}{path}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", served.passwords[user])
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.url}{path}*", timeout=WAIT_MS)
    wait_until_idle(page)
    return page


def cells(page, column: str) -> list[str]:
    """Texts of the Tabulator column headed ``column`` on the current page (waits for it to
    render). The header is what users read; the cube explorer's fields stay fixed behind it."""
    header = page.wait_for_selector(
        f".tabulator-col:has(.tabulator-col-title:text-is('{column}'))", timeout=WAIT_MS
    )
    field = header.get_attribute("tabulator-field")
    selector = f".tabulator-row .tabulator-cell[tabulator-field='{field}']"
    page.wait_for_selector(selector, timeout=WAIT_MS)
    return [c.inner_text() for c in page.query_selector_all(selector)]


def numbers(texts: list[str]) -> list[float]:
    """Formatted cells back to numbers; Tabulator shows a missing value (no flights) as '-'."""
    return [float("nan") if t.strip() == "-" else float(t.replace(",", "")) for t in texts]


def wait_for_rows(page, field: str, expected: list[str]) -> None:
    """Wait until the column shows exactly ``expected`` (the update travels over a websocket)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        try:
            if cells(page, field) == expected:
                return
        except Exception:  # the table is being replaced
            pass
        time.sleep(0.1)
    page.screenshot(path=SHOTS / f"failed-{field}.png")  # what the page showed instead
    assert cells(page, field) == expected


def bar_position(page, member: str) -> tuple[float, float]:
    """Screen coordinates of the bar of ``member`` in the first Bokeh figure on the page."""
    box = page.evaluate(
        """(member) => {
          for (const view of Bokeh.index.all_views()) {
            if (view.model.type !== 'Figure') continue;
            const factors = view.model.x_range.factors ?? [];
            if (!factors.includes(member)) continue;
            const canvas = view.canvas_view.el.getBoundingClientRect();
            const x = view.frame.x_scale.compute(view.model.x_range.synthetic(member));
            return {x: canvas.left + x, y: canvas.top + view.frame.bbox.bottom - 4};
          }
          return null;
        }""",
        member,
    )
    assert box is not None, f"no bar for {member!r} on the page"
    return box["x"], box["y"]


def cut_cells(page, column: str) -> list[str]:
    """Cells of the column headed ``column`` whose text does not fit: cut at the cell's edge."""
    header = page.locator(f".tabulator-col:has(.tabulator-col-title:text-is('{column}'))")
    field = header.first.get_attribute("tabulator-field", timeout=WAIT_MS)
    return page.locator(f".tabulator-cell[tabulator-field='{field}']").evaluate_all(
        "cells => cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText)"
    )


def answered_by(page, cube, by: list[str], **where) -> str:
    """Wait for the line under the table to name the cuboid the cube picks for this view."""
    line = str(cube.explain(Query(tuple(by), tuple(where.items())))).splitlines()[0]
    shown = page.locator(".answered-by", has_text=line)
    shown.wait_for(timeout=WAIT_MS)
    box = shown.bounding_box()
    # Seen without scrolling: under the table's fixed height it was below the fold.
    assert box is not None and box["y"] + box["height"] <= page.viewport_size["height"]
    return line


def test_cube_explorer_widgets_drill_download_and_link(browser, served, cube):
    page = signed_in(browser, served, "ada", "/cubes")
    start = time.monotonic()
    expected = cube.query(["carrier"], measures=["flights"])
    assert cells(page, "carrier") == expected.index.tolist()[:20]
    assert numbers(cells(page, "flights")) == expected["flights"].tolist()[:20]
    first_load = time.monotonic() - start
    assert answered_by(page, cube, ["carrier"]).startswith("answered by ")
    assert "ExpressJet Airlines Inc." in cells(page, "name")
    assert cut_cells(page, "name") == []

    # Change a widget: the measure.
    page.get_by_label("Measure").select_option("mean_dep_delay")
    means = cube.query(["carrier"], measures=["mean_dep_delay"])["mean_dep_delay"]
    shown = numbers(cells(page, "mean_dep_delay"))
    assert shown == pytest.approx(means.round(2).tolist(), abs=0.006)
    answered_by(page, cube, ["carrier"])
    page.screenshot(path=SHOTS / "cubes.png")

    # Drill down by clicking United's bar: UA's flights by origin.
    page.mouse.click(*bar_position(page, "UA"))
    ua = cube.query(["origin"], where={"carrier": "UA"}, measures=["mean_dep_delay"])
    wait_for_rows(page, "origin", ua.index.tolist())
    shown = numbers(cells(page, "mean_dep_delay"))
    assert shown == pytest.approx(ua["mean_dep_delay"].round(2).tolist(), abs=0.006)
    page.get_by_role("button", name="carrier UA").wait_for(timeout=WAIT_MS)
    by_origin = answered_by(page, cube, ["origin"], carrier="UA")

    # Drill further by clicking a cell: JFK, then the next dimension (destination time zones).
    page.locator(".tabulator-cell[tabulator-field='member']", has_text="JFK").click()
    zones = cube.query(
        ["dest_tzone"],
        where={"carrier": "UA", "origin": "JFK"},
        measures=["mean_dep_delay"],
        having="flights > 0",  # the explorer hides members without flights
    )
    wait_for_rows(page, "dest_tzone", zones.index.tolist())
    assert numbers(cells(page, "mean_dep_delay")) == pytest.approx(
        zones["mean_dep_delay"].round(2).tolist(), abs=0.006, nan_ok=True
    )
    by_zone = answered_by(page, cube, ["dest_tzone"], carrier="UA", origin="JFK")
    # Longer members than the carriers the column was first sized for are not cut.
    assert cut_cells(page, "dest_tzone") == []
    assert by_zone != by_origin  # the line follows the view, not only the first query
    page.screenshot(path=SHOTS / "cubes_drilled.png")

    # The URL holds the view: a new tab on the same link shows the same numbers.
    page.wait_for_function("window.location.search.includes('JFK')", timeout=WAIT_MS)
    link = page.url
    assert "rows=dest_tzone" in link
    again = page.context.new_page()
    again.goto(link)
    wait_for_rows(again, "dest_tzone", zones.index.tolist())
    again.close()

    # Download what is shown, as CSV and as Excel.
    with page.expect_download() as done:
        page.get_by_role("button", name="Download CSV").click()
    csv = pd.read_csv(done.value.path())
    assert csv["dest_tzone"].tolist() == zones.index.tolist()
    assert csv["mean_dep_delay"].tolist() == pytest.approx(
        zones["mean_dep_delay"].tolist(), nan_ok=True
    )
    with page.expect_download() as done:
        page.get_by_role("button", name="Download Excel").click()
    excel = pd.read_excel(done.value.path())
    assert excel["mean_dep_delay"].tolist() == pytest.approx(
        zones["mean_dep_delay"].tolist(), nan_ok=True
    )

    # Roll back up with the breadcrumb, then pivot by origin: a heatmap and a wide table.
    page.get_by_role("button", name="All").click()
    wait_for_rows(page, "carrier", means.index.tolist()[:20])
    page.get_by_label("Columns").select_option("origin")
    pivot = cube.query(
        ["carrier", "origin"], measures=["mean_dep_delay", "flights"], having="flights > 0"
    )["mean_dep_delay"].unstack("origin")
    shown = numbers(cells(page, "JFK"))
    assert shown == pytest.approx(pivot["JFK"].round(2).tolist(), abs=0.006, nan_ok=True)
    page.screenshot(path=SHOTS / "cubes_pivot.png")
    assert first_load < 60
    page.context.close()


def test_quality_app_shows_batches_quarantine_and_reports(browser, served, demo):
    from workbench.views import QualityStore

    _, ws, _ = demo
    store = QualityStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))
    batches = store.batches()
    page = signed_in(browser, served, "ada", "/quality")
    assert cells(page, "dataset") == batches.dataset.tolist()
    assert cells(page, "status") == batches.status.tolist()
    assert numbers(cells(page, "quarantined")) == batches.quarantined.tolist()
    page.screenshot(path=SHOTS / "quality.png")

    # The flights report opens from its link.
    with page.context.expect_page() as opened:
        page.locator(".tabulator-row", has_text="flights").get_by_role("link").click()
    report = opened.value
    report.wait_for_load_state()
    assert "references:dest" in report.content()
    report.close()

    # Quarantined rows, filtered by reason.
    page.get_by_text("Quarantine", exact=True).click()
    page.get_by_label("Reason").select_option("references:dest")
    rows, total = store.quarantined("flights", reason="references:dest")
    page.get_by_text(f"{total:,} quarantined rows").wait_for(timeout=WAIT_MS)
    assert set(cells(page, "_reasons")) == {"references:dest"}
    assert numbers(cells(page, "_line"))[:5] == rows._line.head(5).tolist()
    page.screenshot(path=SHOTS / "quality_quarantine.png")
    page.context.close()


def test_models_app_answers_the_whatif_form(browser, served):
    from workbench.views import ModelStore

    store = ModelStore(catalog_path=str(DEMO_CATALOG), workspace=served_workspace(served))
    page = signed_in(browser, served, "bob", "/models")
    form = page.locator(".whatif")
    form.get_by_label("origin").wait_for(timeout=WAIT_MS)
    _, meta = store.current("departure_delay")
    values = store.feature_defaults("departure_delay", meta)
    values = {f: round(values[f], 2) if f not in meta["categories"] else values[f] for f in values}
    before = store.predict("departure_delay", values)
    page.get_by_text(f"{before:.1%}", exact=True).wait_for(timeout=WAIT_MS)
    form.get_by_label("origin").select_option("JFK")
    after = store.predict("departure_delay", values | {"origin": "JFK"})
    assert f"{after:.1%}" != f"{before:.1%}"
    page.get_by_text(f"{after:.1%}", exact=True).wait_for(timeout=WAIT_MS)
    page.screenshot(path=SHOTS / "models.png")
    page.context.close()


def figure_data(page, title: str, columns: list[str]) -> dict[str, list[float]]:
    """``columns`` of the first glyph that has them in the Bokeh figure titled ``title...``,
    as the browser holds them (waits for the figure to render)."""
    script = """([title, columns]) => {
      for (const view of Bokeh.index.all_views()) {
        if (view.model.type !== 'Figure') continue;
        if (!(view.model.title?.text ?? '').startsWith(title)) continue;
        for (const r of view.model.renderers) {
          const data = r.data_source?.data;
          if (!data) continue;
          const get = (c) => (data instanceof Map ? data.get(c) : data[c]);
          if (!columns.every((c) => get(c) !== undefined)) continue;
          return Object.fromEntries(columns.map((c) => [c, Array.from(get(c))]));
        }
      }
      return null;
    }"""
    page.wait_for_function(script, arg=[title, columns], timeout=WAIT_MS)
    return page.evaluate(script, [title, columns])


def test_models_app_curves_predictions_and_drift(browser, served, demo_monitored):
    from workbench.views import ModelStore, PredictionStore
    from workbench.views.predictions import compare_by, summary

    _, ws, _ = demo_monitored
    name = "departure_delay"
    models = ModelStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))
    version = models.default_version(name)
    page = signed_in(browser, served, "bob", "/models")

    # The curves of the production version, as the registry keeps them.
    page.get_by_text("Curves", exact=True).click()
    curves = models.curves(name, version)
    shown = figure_data(page, "ROC curve", ["fpr", "tpr"])
    assert shown["fpr"] == pytest.approx(curves["roc"].fpr.tolist(), abs=1e-12)
    assert shown["tpr"] == pytest.approx(curves["roc"].tpr.tolist(), abs=1e-12)
    shown = figure_data(page, "precision/recall", ["recall", "precision"])
    assert shown["precision"] == pytest.approx(curves["pr"].precision.tolist(), abs=1e-12)
    page.screenshot(path=SHOTS / "models_curves.png")

    # Predictions: the summary line, then a carrier filter changes it to the store's numbers.
    predictions = PredictionStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))
    scored = predictions.version(name)

    def line(**members) -> str:
        s = summary(predictions.rows(name, scored, members=members))
        return (
            f"{s['rows']:,} predictions, mean predicted {s['predicted']:.1%}; {s['known']:,} "
            f"with a known outcome, observed {s['observed']:.1%}, ROC AUC {s['roc_auc']:.3f}."
        )

    page.get_by_text("Predictions", exact=True).click()
    page.get_by_text(line(), exact=True).wait_for(timeout=WAIT_MS)
    carrier = page.locator(".prediction-filters .choices__input--cloned").first  # the first key
    carrier.click()
    page.keyboard.type("UA")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    united = line(carrier=["UA"])
    assert united != line()
    page.get_by_text(united, exact=True).wait_for(timeout=WAIT_MS)
    wait_for_rows(page, "carrier", ["UA"] * 20)  # the table's first page
    # United by origin: the bars are the store's means over the same rows.
    page.get_by_label("Compare by").select_option("origin")
    by_origin = compare_by(predictions.rows(name, scored, members={"carrier": ["UA"]}), "origin")
    by_origin = by_origin.sort_values("rows", ascending=False)
    bars = figure_data(page, "by origin", ["origin", "predicted"])
    assert bars["origin"] == by_origin.index.astype(str).tolist()  # most rows first
    assert bars["predicted"] == pytest.approx(by_origin.predicted.tolist(), rel=1e-12)
    page.screenshot(path=SHOTS / "models_predictions.png")

    # Drift over the monitored months, with the alert threshold.
    page.get_by_text("Drift", exact=True).click()
    history = models.drift_history(name, version)
    threshold = figure_data(page, "PSI per feature", ["threshold"])["threshold"]
    assert threshold == [models.catalog.models[name].monitor.psi] * history.window.nunique()
    page.screenshot(path=SHOTS / "models_drift.png", full_page=True)
    page.context.close()


def served_workspace(served) -> str:
    args = served.proc.args
    return args[args.index("--workspace") + 1]


def test_without_credentials_or_the_role_the_quality_app_stays_shut(browser, served):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{served.url}/quality")
    assert "/login" in page.url and page.locator("input[name=password]").is_visible()
    context.close()

    page = signed_in(browser, served, "bob", "/")
    page.get_by_text("Data quality (not for your role)").wait_for(timeout=WAIT_MS)
    assert page.get_by_role("link", name="Cube explorer").is_visible()
    page.screenshot(path=SHOTS / "index.png")
    response = page.goto(f"{served.url}/quality")
    assert response.status == 403
    assert "not authorized" in page.content()
    page.context.close()
