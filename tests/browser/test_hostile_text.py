"""Hostile text in the real browser, beyond the names of test_dashboard.py: review notes,
place names, the URL, the visit panel, the briefing, the login form.

Each payload would set ``window.__xss`` or load ``/x`` if anything rendered it as HTML.
The pages are opened with the CSP bypassed (as every functional browser test here), so
the escaping itself is tested, not the CSP that would also stop most of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.browser.conftest import IMG_HOLDER, NOTE, PLACE_NAME, SCRIPT_NAME, sign_in
from tests.browser.test_dashboard import api_geojson, load

pytestmark = pytest.mark.browser


def assert_inert(page, watch) -> None:
    """No script ran, no dialog opened, no injected image was fetched."""
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not watch.dialogs, f"dialogs fired: {watch.dialogs}"
    assert not [u for u in watch.requests if urlsplit(u).path == "/x"], "an injected <img src=x> was loaded"
    assert page.locator("img[src='x']").count() == 0


def flag_of_b(base_url: str) -> dict:
    flags = api_geojson(base_url, "/api/flags.geojson?q=" + quote("Licence B"))["features"]
    flags = flags or api_geojson(base_url, "/api/flags.geojson")["features"]
    chosen = [f["properties"] for f in flags if f["properties"].get("concession_id") == "B"]
    assert chosen, "the hostile field's concession B has no flag"
    return chosen[-1]


def test_review_note_is_text_for_the_team_and_absent_for_the_public(hostile_url, open_page, browser):
    flag = flag_of_b(hostile_url)
    page, watch = open_page(hostile_url)
    sign_in(page, hostile_url)
    load(page, f"{hostile_url}/?selected=flag:{flag['flag_id']}")
    page.wait_for_selector("#review-save")
    page.check("#review-status input[value='under review']")
    page.fill("#review-note", NOTE)
    page.click("#review-save")
    page.wait_for_function("document.querySelector('#review-message').innerText.startsWith('Saved')")

    load(page, f"{hostile_url}/?selected=flag:{flag['flag_id']}")
    page.wait_for_selector(".review-note")
    assert page.inner_text(".review-note") == NOTE  # shown, character for character
    assert page.input_value("#review-note") == NOTE  # and back in the form, still text
    assert NOTE in page.inner_text("#details")  # the history line quotes it too
    assert page.locator("#details b:has-text('wet')").count() == 0
    assert_inert(page, watch)

    public = browser.new_context(bypass_csp=True).new_page()
    public.goto(f"{hostile_url}/?selected=flag:{flag['flag_id']}")
    public.wait_for_selector(".review-status")
    content = public.content()
    assert "__xss=6" not in content and "__xss=7" not in content and " pit " not in public.inner_text("#details")
    public.context.close()


def test_place_names_are_text_on_the_map(hostile_url, open_page):
    page, watch = open_page(hostile_url)
    load(page, hostile_url + "/")
    page.wait_for_selector(".place-label")
    assert PLACE_NAME in page.inner_text(".place-label")
    assert_inert(page, watch)


def test_hostile_url_parameters_stay_text(hostile_url, open_page):
    page, watch = open_page(hostile_url)
    query = urlencode([("q", SCRIPT_NAME), ("holder", IMG_HOLDER), ("selected", f"concession:{IMG_HOLDER}"),
                       ("period", "<img src=x onerror=window.__xss=8>"), ("type", "<script>x</script>")])  # fmt: skip
    page.goto(f"{hostile_url}/?{query}")
    page.wait_for_function("window.minewatch && window.minewatch.drawn && window.minewatch.drawn().concessions > 0")
    page.wait_for_selector("#search")
    assert page.input_value("#search") == SCRIPT_NAME
    assert_inert(page, watch)


def test_visit_panel_briefing_and_gpx_keep_names_as_text(hostile_url, open_page, tmp_path):
    import gpxpy

    flag = flag_of_b(hostile_url)
    page, watch = open_page(hostile_url)
    sign_in(page, hostile_url)
    load(page, f"{hostile_url}/?selected=flag:{flag['flag_id']}")
    page.click("#visit-add-selected")
    page.wait_for_function("document.querySelector('#visit-summary').innerText.includes('over')")
    summary = page.inner_text("#visit-summary")
    assert PLACE_NAME in summary  # the base defaults to the context's first place
    with page.expect_download() as info:
        page.click("#visit-links a:has-text('GPX')")
    gpx = gpxpy.parse(Path(info.value.path()).read_text(encoding="utf-8"))
    texts = json.dumps([[w.name, w.description, w.comment] for w in gpx.waypoints])
    assert json.dumps(PLACE_NAME)[1:-1] in texts  # the XML parsed back to the very same text
    assert_inert(page, watch)

    href = page.get_attribute("#visit-links a:has-text('Briefing (HTML)')", "href")
    briefing, briefing_watch = open_page(hostile_url)
    sign_in(briefing, hostile_url)
    briefing.goto(hostile_url + href)
    body = briefing.inner_text("body")
    assert IMG_HOLDER in body, body
    assert PLACE_NAME in body, body
    assert_inert(briefing, briefing_watch)


def test_login_form_does_not_echo_markup(hostile_url, open_page):
    page, watch = open_page(hostile_url)
    page.goto(hostile_url + "/login")
    page.fill("#username", IMG_HOLDER)
    page.fill("#password", SCRIPT_NAME)
    page.click("button[type=submit]")
    page.wait_for_selector(".error")
    assert_inert(page, watch)
