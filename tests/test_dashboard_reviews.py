"""Reviews and accounts in the dashboard: sign-in, roles on every route, no lost update."""

from __future__ import annotations

import csv
import io

import flask
import pytest

from dashboard import create_app
from dashboard.callbacks.details import review_view
from dashboard.callbacks.review import store_review
from dashboard.state import state
from layers.results import read_analysis, write_analysis
from layers.review_store import open_store
from tests.conftest import analyse_field, write_field

ORIGIN = {"Origin": "http://localhost"}
PASSWORD = "correct horse battery"


@pytest.fixture
def site(tmp_path):
    """A dashboard over a saved analysis with one team member, alice."""
    paths = write_field(tmp_path / "field")
    results = write_analysis(analyse_field(paths), tmp_path / "results")
    with open_store(results) as store:
        store.add_user("alice", PASSWORD, "team")
        store.add_user("bob", PASSWORD, "team")
    app = create_app(read_analysis(results), results_dir=results)
    flag_id = state().analysis.flags.query("flag_type == 'activity_without_production'")["flag_id"].iloc[0]
    return app.server, results, flag_id, paths


def sign_in(server, username="alice", password=PASSWORD):
    client = server.test_client()
    response = client.post("/login", data={"username": username, "password": password}, headers=ORIGIN)
    return client, response


def save_as(server, username, flag_id, status, note, version):
    with server.test_request_context("/", headers=ORIGIN):
        flask.session["user"] = username
        return store_review(f"flag:{flag_id}", status, note, "photo-017.jpg", version)


def test_sign_in_and_out(site):
    server, *_ = site
    assert server.test_client().get("/login").status_code == 200
    client, response = sign_in(server)
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert session["user"] == "alice"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.post("/logout").status_code == 403  # no Origin: refused
    assert client.post("/logout", headers=ORIGIN).status_code == 302


def test_wrong_password_and_rate_limit(site):
    server, *_ = site
    for _ in range(5):
        assert sign_in(server, password="wrong password!")[1].status_code == 401
    assert sign_in(server)[1].status_code == 429  # even the right password, until the window passes
    cross_site = server.test_client().post("/login", data={"username": "bob", "password": PASSWORD},
                                           headers={"Origin": "http://evil.example"})  # fmt: skip
    assert cross_site.status_code == 403


def test_team_saves_and_second_reviewer_sees_a_conflict(site):
    server, _, flag_id, _ = site
    message, saved = save_as(server, "alice", flag_id, "confirmed", "pit seen, fresh spoil", 0)
    assert saved and message == "Saved: confirmed."
    message, saved = save_as(server, "bob", flag_id, "dismissed", "nothing there", 0)  # bob saw version 0 too
    assert not saved and "alice changed this review" in message
    current = state().review_store.current()[flag_id]
    assert (current.status, current.note, current.reviewer) == ("confirmed", "pit seen, fresh spoil", "alice")


def test_public_cannot_save_and_never_sees_notes(site):
    server, _, flag_id, _ = site
    save_as(server, "alice", flag_id, "confirmed", "informant: night digging", 0)
    with server.test_request_context("/", headers=ORIGIN):
        assert store_review(f"flag:{flag_id}", "dismissed", "x", "", 1) == (
            "Only signed-in team members can review.",
            False,
        )
        public = review_view(state(), "flag", flag_id)
    assert public["team"] is False and public["history"] == []
    public_csv = server.test_client().get("/api/flags.csv").get_data(as_text=True)
    rows = {r["flag_id"]: r for r in csv.DictReader(io.StringIO(public_csv))}
    assert rows[flag_id]["review_status"] == "confirmed"
    assert "review_note" not in rows[flag_id] and "informant" not in public_csv
    public_geojson = server.test_client().get("/api/flags.geojson").get_data(as_text=True)
    assert "informant" not in public_geojson and "alice" not in public_geojson
    client, _ = sign_in(server)
    team_csv = client.get("/api/flags.csv").get_data(as_text=True)
    team_rows = {r["flag_id"]: r for r in csv.DictReader(io.StringIO(team_csv))}
    assert team_rows[flag_id]["review_note"] == "informant: night digging" and team_rows[flag_id]["reviewer"] == "alice"


def test_removed_user_loses_access_at_once(site):
    server, results, flag_id, _ = site
    client, _ = sign_in(server)
    with open_store(results) as store:
        store.remove_user("alice")
    assert "review_note" not in client.get("/api/flags.csv").get_data(as_text=True).splitlines()[0]


def test_review_survives_a_new_analysis_into_the_same_folder(site):
    server, results, flag_id, paths = site
    save_as(server, "alice", flag_id, "confirmed", "kept", 0)
    write_analysis(analyse_field(paths), results)  # re-run: the folder is replaced
    with open_store(results) as store:
        assert store.current()[flag_id].note == "kept"
        assert [e.new_status for e in store.history(flag_id)] == ["confirmed"]


def test_planning_is_for_the_team(site):
    server, _, flag_id, _ = site
    query = f"/api/visit-plan.gpx?flag={flag_id}&start=32.67,-18.97"
    assert server.test_client().get(query).status_code == 403
    client, _ = sign_in(server)
    assert client.get(query).status_code == 200


def test_review_status_goes_into_the_visit_plan(site):
    import gpxpy

    server, _, flag_id, _ = site
    save_as(server, "alice", flag_id, "confirmed", "seen", 0)
    client, _ = sign_in(server)
    gpx = gpxpy.parse(client.get(f"/api/visit-plan.gpx?flag={flag_id}&start=32.67,-18.97").get_data(as_text=True))
    assert "Review: confirmed." in gpx.waypoints[1].description
    rows = client.get(f"/api/visit-plan.csv?flag={flag_id}&start=32.67,-18.97").get_data(as_text=True)
    assert "confirmed" in rows.splitlines()[1]


def test_cookie_is_secure_over_tls_and_not_over_plain_http(site):
    server, *_ = site
    plain = sign_in(server)[1].headers["Set-Cookie"]
    assert "Secure" not in plain  # a plain-http deployment (a laptop in the field) must still sign in
    tls = server.test_client().post("/login", data={"username": "alice", "password": PASSWORD},
                                    headers={"Origin": "https://localhost"}, base_url="https://localhost")  # fmt: skip
    assert tls.status_code == 302 and "Secure" in tls.headers["Set-Cookie"]


def test_behind_a_proxy_the_limiter_counts_each_client_not_the_proxy(tmp_path, monkeypatch):
    paths = write_field(tmp_path / "field")
    results = write_analysis(analyse_field(paths), tmp_path / "results")
    with open_store(results) as store:
        store.add_user("alice", PASSWORD, "team")
    monkeypatch.setenv("MINEWATCH_PROXIES", "1")
    server = create_app(read_analysis(results), results_dir=results).server
    client = server.test_client()

    def attempt(address, password, proto="http"):
        headers = {**ORIGIN, "X-Forwarded-For": address, "X-Forwarded-Proto": proto}
        return client.post("/login", data={"username": "mallory", "password": password}, headers=headers)

    for _ in range(5):  # someone at 198.51.100.7 fails five times...
        assert attempt("198.51.100.7", "guess").status_code == 401
    assert attempt("198.51.100.7", "guess").status_code == 429
    ok = client.post("/login", data={"username": "alice", "password": PASSWORD},  # ...alice, elsewhere, is not locked out
                     headers={**ORIGIN, "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})  # fmt: skip
    assert ok.status_code == 302 and "Secure" in ok.headers["Set-Cookie"]  # the client used https
