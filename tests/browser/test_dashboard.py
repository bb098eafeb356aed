"""The dashboard in a real headless Chromium, against a live ``python app.py serve``.

Every test waits on a condition (the map's drawn features, the table's rows, the URL),
never on a fixed sleep. ``window.minewatch.drawn()`` counts the features Leaflet has on
the map; ``window.minewatch.map`` is the Leaflet map.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from geo.flags import FLAG_LABELS, FLAG_TYPES
from geo.periods import parse_period
from tests.browser.conftest import (
    IMG_HOLDER,
    IMG_NAME,
    MARKUP_ID,
    PHONE,
    SCRIPT_HOLDER,
    SCRIPT_NAME,
)

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/minewatch-shots")
DEMO_CONCESSIONS = 20
ROWS = "#flag-table .ag-center-cols-container .ag-row"
MAP_BOUNDS_JS = "(() => { const b = window.minewatch.map.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()"


# --------------------------------------------------------------------------- helpers


def load(page, url: str) -> None:
    """Open ``url`` and wait until the map has drawn its concessions and the table has rows."""
    page.goto(url)
    page.wait_for_function("window.minewatch && window.minewatch.drawn && window.minewatch.drawn().concessions > 0")
    page.wait_for_function(f"document.querySelectorAll({json.dumps(ROWS)}).length > 0")


def drawn(page) -> dict:
    return page.evaluate("window.minewatch.drawn()")


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def table_rows(page) -> list[dict]:
    """The rendered rows of the flag table: {"row_id": ..., column id: cell text}."""
    return page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(selector)).map(row => {
             const out = {row_id: row.getAttribute('row-id')};
             row.querySelectorAll('.ag-cell').forEach(c => { out[c.getAttribute('col-id')] = c.innerText.trim(); });
             return out; })""",
        ROWS,
    )


def shown_count(page) -> int:
    """N of the "N of M flags shown (...)" line above the table."""
    return int(page.inner_text("#flag-count").split()[0])


def wait_text_change(page, selector: str, old: str) -> str:
    page.wait_for_function(
        "([sel, old]) => { const e = document.querySelector(sel); return e && e.innerText !== old; }",
        arg=[selector, old],
    )
    return page.inner_text(selector)


def api_geojson(base_url: str, path: str) -> dict:
    with urllib.request.urlopen(base_url + path, timeout=10) as response:
        return json.loads(response.read())


def analysis_periods(base_url: str) -> list[str]:
    """The analysis's periods in order (the slider's positions), from the stats table."""
    with urllib.request.urlopen(base_url + "/api/concession_stats.csv", timeout=10) as response:
        rows = csv.DictReader(io.StringIO(response.read().decode("utf-8")))
        return sorted({row["period"] for row in rows}, key=lambda p: parse_period(p).start)


def feature_bbox(feature: dict) -> list[float]:
    if feature.get("bbox"):
        return feature["bbox"]
    xs, ys = zip(*coordinates(feature["geometry"]), strict=True)
    return [min(xs), min(ys), max(xs), max(ys)]


def coordinates(geometry: dict) -> list[tuple[float, float]]:
    out = []

    def walk(node):
        if isinstance(node[0], (int, float)):
            out.append((node[0], node[1]))
        else:
            for child in node:
                walk(child)

    if geometry["type"] == "GeometryCollection":
        for part in geometry["geometries"]:
            out += coordinates(part)
    else:
        walk(geometry["coordinates"])
    return out


def exterior_rings(geometry: dict) -> list[list]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"][0]]
    if geometry["type"] == "MultiPolygon":
        return [polygon[0] for polygon in geometry["coordinates"]]
    if geometry["type"] == "GeometryCollection":
        return [ring for part in geometry["geometries"] for ring in exterior_rings(part)]
    return []


def signed_area(ring: list) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0, *_), (x1, y1, *_) in zip(ring, ring[1:], strict=False)) / 2


def untick(page, checklist_id: str, value: str) -> None:
    """Untick one option of a dcc.Checklist by clicking its label (the input is read-only)."""
    option = page.locator(f"#{checklist_id} label", has=page.locator(f'input[value="{value}"]'))
    assert option.locator("input").is_checked()
    option.click()
    page.wait_for_function(
        "([id, v]) => !document.querySelector(`#${id} input[value='${v}']`).checked", arg=[checklist_id, value]
    )


def screenshot(page, name: str, full_page: bool = False) -> None:
    """Save a screenshot for people to look at (never asserted)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=full_page)


def wait_for_national_panel(page) -> None:
    """Until the national panel below the table has its content (a table or a chart)."""
    page.wait_for_function("document.querySelector('.national-panel table, .national-panel .main-svg') !== null")


# --------------------------------------------------------------------------- 1. page load


def test_page_loads_with_map_legend_banner_and_table_offline(demo_url, open_page):
    page, watch = open_page(demo_url)
    load(page, demo_url + "/")
    page.wait_for_function("window.minewatch.drawn().flags > 0 && window.minewatch.drawn().footprints > 0")
    wait_for_national_panel(page)
    screenshot(page, "desktop-1280x800.png")
    screenshot(page, "desktop-full.png", full_page=True)

    counts = drawn(page)
    assert counts["concessions"] == DEMO_CONCESSIONS
    assert counts["flags"] > 0
    assert counts["footprints"] > 0

    legend = page.inner_text(".legend")
    missing = [FLAG_LABELS[t] for t in FLAG_TYPES if FLAG_LABELS[t] not in legend]
    assert not missing, f"legend does not name {missing}"
    assert not [t for t in FLAG_TYPES if t in legend], "the legend shows code names, not words"

    banner = page.locator(".synthetic-banner")
    assert banner.is_visible()
    assert "SYNTHETIC" in banner.inner_text()

    rows = table_rows(page)
    assert rows and all(row["reason"] for row in rows)
    assert shown_count(page) == len(rows) or len(rows) == 10  # one page of 10 at most

    assert not watch.errors, f"browser console errors: {watch.errors}"
    assert not watch.external_requests, f"requests leaving 127.0.0.1: {watch.external_requests}"
    assert any("/_dash-layout" in url for url in watch.requests)  # the layers came with the page, from this server


# --------------------------------------------------------------------------- 2. period slider


def test_period_slider_moves_map_table_note_and_url(demo_url, open_page):
    page, watch = open_page(demo_url)
    load(page, demo_url + "/")
    page.wait_for_function("window.minewatch.drawn().footprints > 0")
    periods = analysis_periods(demo_url)
    latest, previous = periods[-1], periods[-2]
    assert page.inner_text("#period-label") == latest
    page.wait_for_function(f"document.querySelector('#activity-note').innerText === 'Showing activity of {latest}'")
    before_rows = {row["row_id"] for row in table_rows(page)}
    before_footprints = drawn(page)["footprints"]
    before_count = page.inner_text("#flag-count")

    page.locator("#period [role=slider]").focus()
    page.keyboard.press("ArrowLeft")

    page.wait_for_function(f"new URLSearchParams(location.search).get('period') === {json.dumps(previous)}")
    page.wait_for_function(f"document.querySelector('#period-label').innerText === {json.dumps(previous)}")
    page.wait_for_function(f"document.querySelector('#activity-note').innerText === 'Showing activity of {previous}'")
    wait_text_change(page, "#flag-count", before_count)
    page.wait_for_function(f"window.minewatch.drawn().footprints !== {before_footprints}")
    assert page.locator("#period [role=slider]").get_attribute("aria-valuenow") == str(periods.index(previous))
    page.wait_for_function(
        f"document.querySelector('.leaflet-image-layer').src.endsWith('/map/activity/{previous}.png')"
    )

    rows = table_rows(page)
    assert rows and {row["row_id"] for row in rows} != before_rows
    assert {row["period"] for row in rows} == {previous}
    assert f"({previous})" in page.inner_text("#flag-count")
    assert not watch.errors, f"browser console errors: {watch.errors}"


# --------------------------------------------------------------------------- 3. flag-type filter


def test_unticking_a_flag_type_removes_it_from_map_table_and_url(demo_url, open_page):
    page, watch = open_page(demo_url)
    load(page, demo_url + "/")
    period = page.inner_text("#period-label")
    features = api_geojson(demo_url, f"/api/flags.geojson?period={period}")["features"]
    drawable = [f for f in features if f["geometry"]]
    page.wait_for_function(f"window.minewatch.drawn().flags === {len(drawable)}")
    flag_type, n_type = Counter(f["properties"]["flag_type"] for f in drawable).most_common(1)[0]
    label = FLAG_LABELS[flag_type]
    rows = table_rows(page)
    assert label in {row["label"] for row in rows}
    count_text = page.inner_text("#flag-count")
    assert shown_count(page) == len(features)

    requests_before = len(watch.requests)
    untick(page, "flag-types", flag_type)

    page.wait_for_function(f"window.minewatch.drawn().flags === {len(drawable) - n_type}")
    wait_text_change(page, "#flag-count", count_text)
    assert shown_count(page) == len(features) - sum(f["properties"]["flag_type"] == flag_type for f in features)
    rows = table_rows(page)
    assert label not in {row["label"] for row in rows}
    page.wait_for_function("new URLSearchParams(location.search).getAll('type').length > 0")
    types = query(page)["type"]
    assert flag_type not in types and set(types) == set(FLAG_TYPES) - {flag_type}
    # restyled, not re-sent: no layer geometry fetched again for a filter change
    refetched = [u for u in watch.requests[requests_before:] if "/map/" in u and u.endswith(".geojson")]
    assert not refetched, f"a filter change re-fetched geometry: {refetched}"
    assert not watch.errors, f"browser console errors: {watch.errors}"


# --------------------------------------------------------------------------- 4. table row selects


def test_choosing_a_table_row_selects_the_flag_and_zooms_the_map(demo_url, open_page):
    page, watch = open_page(demo_url)
    load(page, demo_url + "/")
    features = {f["properties"]["flag_id"]: f for f in api_geojson(demo_url, "/api/flags.geojson")["features"]}
    rows = [row for row in table_rows(page) if features[row["row_id"]]["geometry"]]
    row = rows[1] if len(rows) > 1 else rows[0]  # not simply the first
    flag_id = row["row_id"]
    reason = features[flag_id]["properties"]["reason"]
    west, south, east, north = feature_bbox(features[flag_id])
    before = page.evaluate(MAP_BOUNDS_JS)

    page.locator(f'{ROWS}[row-id="{flag_id}"] [col-id="label"]').click()

    page.wait_for_function("new URLSearchParams(location.search).has('selected')")
    assert query(page)["selected"] == [f"flag:{flag_id}"]
    page.wait_for_function("([t]) => document.querySelector('#details').innerText.includes(t)", arg=[reason])
    details = page.inner_text("#details")
    assert FLAG_LABELS[features[flag_id]["properties"]["flag_type"]] in details
    assert flag_id in details

    # the map flies to the flag: it ends up inside a viewport much smaller than the field's
    before_area = (before[2] - before[0]) * (before[3] - before[1])
    page.wait_for_function(
        """([w, s, e, n, area]) => { const b = window.minewatch.map.getBounds();
             const inside = b.getWest() <= w && b.getSouth() <= s && b.getEast() >= e && b.getNorth() >= n;
             return inside && (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth()) < area / 4; }""",
        arg=[west, south, east, north, before_area],
    )
    after = page.evaluate(MAP_BOUNDS_JS)
    assert after != before
    assert not watch.errors, f"browser console errors: {watch.errors}"


# --------------------------------------------------------------------------- 5. deep link


def test_deep_link_reproduces_period_filter_and_selection(demo_url, open_page):
    page, watch = open_page(demo_url)
    load(page, demo_url + "/?period=2019&severity=high&selected=concession:MW-013")
    expected = api_geojson(demo_url, "/api/flags.geojson?period=2019&severity=high")["features"]
    assert expected, "the demo has high flags in 2019"

    page.wait_for_function("document.querySelector('#period-label').innerText === '2019'")
    periods = analysis_periods(demo_url)
    assert page.locator("#period [role=slider]").get_attribute("aria-valuenow") == str(periods.index("2019"))
    assert page.locator('#severities input[value="high"]').is_checked()
    assert not page.locator('#severities input[value="medium"]').is_checked()
    assert not page.locator('#severities input[value="low"]').is_checked()

    page.wait_for_function(f"document.querySelector('#flag-count').innerText.startsWith('{len(expected)} of ')")
    rows = table_rows(page)
    assert {row["severity"] for row in rows} == {"high"}
    assert {row["period"] for row in rows} == {"2019"}
    assert {row["row_id"] for row in rows} == {f["properties"]["flag_id"] for f in expected}

    page.wait_for_function("document.querySelector('#details').innerText.includes('Licence MW-013')")
    assert "MW-013" in page.inner_text("#details table.attributes")
    assert query(page)["selected"] == ["concession:MW-013"]
    assert not watch.errors, f"browser console errors: {watch.errors}"


# --------------------------------------------------------------------------- 6. download


def test_download_flags_geojson_honours_the_filters(demo_url, open_page):
    page, watch = open_page(demo_url)
    load(page, demo_url + "/")
    count_text = page.inner_text("#flag-count")
    label = page.inner_text("#period-label")
    page.locator("#period [role=slider]").focus()
    page.keyboard.press("ArrowLeft")
    period = wait_text_change(page, "#period-label", label)  # the label's callback renders the overlay first
    count_text = wait_text_change(page, "#flag-count", count_text)
    untick(page, "severities", "low")
    wait_text_change(page, "#flag-count", count_text)
    page.wait_for_function(
        f"""() => {{ const h = document.querySelector('#download-geojson').getAttribute('href');
                    return h.includes('period={period}') && h.includes('severity='); }}"""
    )
    shown = shown_count(page)

    with page.expect_download() as info:
        page.click("#download-geojson")
    download = info.value
    assert download.suggested_filename.endswith(".geojson")
    data = json.loads(Path(download.path()).read_text(encoding="utf-8"))

    assert data["type"] == "FeatureCollection"
    assert "crs" not in data
    features = data["features"]
    assert len(features) == shown > 0
    assert {f["properties"]["period"] for f in features} == {period}
    assert {f["properties"]["severity"] for f in features} <= {"high", "medium"}
    points = [pt for f in features if f["geometry"] for pt in coordinates(f["geometry"])]
    assert points
    assert all(32 <= lon <= 33 and -20 <= lat <= -19 for lon, lat in points), "not lon/lat in the demo area"
    rings = [ring for f in features if f["geometry"] for ring in exterior_rings(f["geometry"])]
    assert rings and all(signed_area(ring) > 0 for ring in rings), "exterior rings must be counter-clockwise"
    assert not watch.errors, f"browser console errors: {watch.errors}"


# --------------------------------------------------------------------------- 7. hostile text


TOOLTIPS_JS = """() => { const out = [];
  window.minewatch.map.eachLayer(l => {
    if (!l.feature || !l.getTooltip || !l.getTooltip()) return;
    l.openTooltip(l.getBounds ? l.getBounds().getCenter() : undefined);
    const el = l.getTooltip().getElement();
    out.push(el ? el.innerText : '');
    l.closeTooltip();
  });
  return out; }"""


def test_hostile_names_stay_text_everywhere(hostile_url, open_page):
    page, watch = open_page(hostile_url)
    load(page, hostile_url + "/")  # no selection, so the map stays still for the hover

    # a real hover over concession B shows its tooltip, with the markup as text
    point = page.evaluate(
        """() => { let found = null; const map = window.minewatch.map;
             map.eachLayer(l => { if (l.feature && l.feature.properties.concession_id === 'B' && !l.feature.properties.flag_id) found = l; });
             const b = found.getBounds();  // near a corner: B's flags cover its centre
             const p = map.latLngToContainerPoint([b.getSouth() + 0.15 * (b.getNorth() - b.getSouth()),
                                                   b.getWest() + 0.15 * (b.getEast() - b.getWest())]);
             const box = map.getContainer().getBoundingClientRect();
             return [box.left + p.x, box.top + p.y]; }"""
    )
    page.mouse.move(*point)
    hover = ".leaflet-tooltip:not(.place-label)"  # not the context's permanent place labels
    page.wait_for_selector(hover)
    assert IMG_HOLDER in page.inner_text(hover)
    assert SCRIPT_NAME in page.inner_text(hover)
    page.mouse.move(1, 1)

    # every tooltip on the map, opened in turn
    tooltips = "\n".join(page.evaluate(TOOLTIPS_JS))
    for text in (IMG_HOLDER, SCRIPT_NAME, SCRIPT_HOLDER, IMG_NAME, MARKUP_ID):
        assert text in tooltips, f"{text!r} not shown as text in any tooltip"

    # the table (the latest period's flags, one page): holders, concession ids and reasons as text
    table = page.inner_text("#flag-table")
    for text in (IMG_HOLDER, SCRIPT_HOLDER, MARKUP_ID):
        assert text in table, f"{text!r} not shown as text in the table"

    # the holder filter's options
    page.click("#holders")
    page.wait_for_function(f"document.body.innerText.includes({json.dumps(SCRIPT_HOLDER)})")
    page.keyboard.press("Escape")

    # the details panel of B (holder and name) and of the concession whose id is markup
    load(page, hostile_url + "/?selected=" + quote("concession:B"))
    page.wait_for_function("document.querySelector('#details').innerText.includes('Licence B')")
    details = page.inner_text("#details")
    assert IMG_HOLDER in details and SCRIPT_NAME in details
    load(page, hostile_url + "/?selected=" + quote(f"concession:{MARKUP_ID}"))
    page.wait_for_function(
        "([t]) => document.querySelector('#details').innerText.includes(t)", arg=[f"Licence {MARKUP_ID}"]
    )
    assert page.locator("#details b").count() == 0, "the concession id was rendered as markup"

    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not watch.dialogs, f"dialogs fired: {watch.dialogs}"
    assert not [u for u in watch.requests if urlsplit(u).path == "/x"], "an injected <img src=x> was loaded"
    assert not watch.errors, f"browser console errors: {watch.errors}"


def test_hostile_concession_id_is_literal_in_the_details_chart(hostile_url, open_page):
    page, watch = open_page(hostile_url)
    load(page, hostile_url + "/?selected=" + quote(f"concession:{MARKUP_ID}"))
    page.wait_for_selector("#details-chart .gtitle")
    title = page.text_content("#details-chart .gtitle")
    assert title.startswith(f"{MARKUP_ID}:"), f"chart title shows {title!r}"


# --------------------------------------------------------------------------- 8. phone


def test_phone_shows_map_and_table_without_horizontal_overflow(demo_url, open_page):
    page, watch = open_page(demo_url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    load(page, demo_url + "/")
    wait_for_national_panel(page)
    screenshot(page, "phone-390x844.png")
    screenshot(page, "phone-full.png", full_page=True)

    assert drawn(page)["concessions"] == DEMO_CONCESSIONS
    assert page.locator("#map").bounding_box()["width"] >= 350
    assert page.locator(ROWS).count() > 0
    assert page.locator("#flag-table").bounding_box()["width"] <= PHONE["width"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"page scrolls sideways: scrollWidth {width}"
    assert not watch.errors, f"browser console errors: {watch.errors}"


def test_phone_period_slider_shows_no_index_box(demo_url, open_page):
    """Dash 4 sliders show a number box on narrow screens by default; for the period slider
    it held the period's index (10 for 2024) and typing a year did nothing."""
    page, watch = open_page(demo_url, viewport=PHONE, is_mobile=True, has_touch=True)
    load(page, demo_url + "/")
    label = page.inner_text("#period-label")
    boxes = page.locator("#period input")
    visible = [boxes.nth(i).input_value() for i in range(boxes.count()) if boxes.nth(i).is_visible()]
    assert all(value == label for value in visible), f"period slider shows {visible} beside period {label}"


# --------------------------------------------------------------------------- uncaught errors


def test_no_uncaught_errors_on_load_and_map_move(demo_url, open_page):
    page, watch = open_page(demo_url)
    load(page, demo_url + "/")
    page.evaluate(
        """() => new Promise(done => { const map = window.minewatch.map;
             map.once('moveend', () => setTimeout(done, 50)); map.panBy([80, 40], {animate: false}); })"""
    )
    assert not watch.page_errors, f"uncaught exceptions: {watch.page_errors}"


# --------------------------------------------------------------------------- visit planning


def test_plan_a_visit_from_the_page_and_download_gpx_and_pdf(demo_url, open_page):
    import gpxpy

    from tests.browser.conftest import sign_in

    page, watch = open_page(demo_url)
    load(page, demo_url + "/")
    assert page.locator("#visit-add-best").count() == 0  # the public do not plan
    sign_in(page, demo_url)
    load(page, demo_url + "/")
    page.click("#visit-add-best")
    page.wait_for_function("document.querySelector('#visit-summary').innerText.includes('over')")
    summary = page.inner_text("#visit-summary")
    assert "from Mutare" in summary and "day(s)" in summary
    with page.expect_download() as info:
        page.click("#visit-links a:has-text('GPX')")
    gpx = gpxpy.parse(Path(info.value.path()).read_text(encoding="utf-8"))
    stops = int(summary.split(" stop")[0])
    assert len(gpx.waypoints) == 1 + stops and gpx.waypoints[0].name == "BASE"
    assert all(32 <= w.longitude <= 33 for w in gpx.waypoints)
    with page.expect_download(timeout=60_000) as info:
        page.click("#visit-links a:has-text('Briefing (PDF)')")
    pdf = Path(info.value.path()).read_bytes()
    assert pdf[:5] == b"%PDF-"
    assert not watch.errors, f"browser console errors: {watch.errors}"


# --------------------------------------------------------------------------- reviews


def test_team_review_survives_a_new_analysis_and_the_public_sees_only_the_status(
    demo_url, demo_results, open_page, browser
):
    from tests.browser.conftest import DEMO_INPUTS, run_analyze, sign_in

    flag = api_geojson(demo_url, "/api/flags.geojson?type=activity_without_production")["features"][0]["properties"]
    page, watch = open_page(demo_url)
    sign_in(page, demo_url)
    load(page, f"{demo_url}/?selected=flag:{flag['flag_id']}")
    page.wait_for_selector("#review-save")
    page.check("#review-status input[value='confirmed']")
    note = "Fresh spoil heaps and a pump at the pit edge (field visit)."
    page.fill("#review-note", note)
    page.click("#review-save")
    page.wait_for_function("document.querySelector('#review-message').innerText.startsWith('Saved')")

    run_analyze(DEMO_INPUTS, demo_results)  # a new analysis replaces the folder the server reads
    load(page, f"{demo_url}/?selected=flag:{flag['flag_id']}")
    page.wait_for_selector(".review-note")
    assert page.inner_text(".review-note") == note
    assert "confirmed" in page.inner_text(".review-status")

    public = browser.new_context(bypass_csp=True).new_page()
    public.goto(f"{demo_url}/?selected=flag:{flag['flag_id']}")
    public.wait_for_selector(".review-status")
    assert "confirmed" in public.inner_text(".review-status")
    assert note not in public.content() and public.locator("#review-save").count() == 0
    assert note not in json.dumps(api_geojson(demo_url, "/api/flags.geojson"))
    public.context.close()
    assert not watch.errors, f"browser console errors: {watch.errors}"


# --------------------------------------------------------------------------- content security policy


def test_csp_the_app_works_under_its_own_policy(demo_url, browser):
    """No bypass here: only selectors (no script probes), and no CSP violation reported."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(demo_url + "/?selected=concession:MW-007")
    assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
    page.wait_for_selector(".leaflet-overlay-pane canvas")
    page.wait_for_selector("#flag-table .ag-row")
    page.wait_for_selector("#details .js-plotly-plot .main-svg")  # Plotly draws the licence's history
    page.wait_for_selector(".leaflet-image-layer")  # the activity overlay
    page.wait_for_timeout(500)
    context.close()
    assert not problems, problems
