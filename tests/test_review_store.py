"""Reviews and accounts on SQLite and PostgreSQL: migrations, locking, history, accounts, crashes.

Every test that takes ``database_url`` runs twice: on the SQLite file beside a results
folder (``database_url`` is None) and on a fresh database in a throwaway PostgreSQL
cluster that :func:`postgres_server` starts from Debian's binaries (never skipped:
``apt-get install -y postgresql`` when it says they are missing).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from geo.errors import InputError, MinewatchError
from layers import review_store as rs
from layers.atomic import atomic_folder, write_text
from layers.review_store import ReviewConflict, ReviewStore, ReviewStoreError, open_store
from layers.users_cli import run_users_cli

ROOT = Path(__file__).resolve().parents[1]
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only: cheap hashes
PASSWORD = "correct horse battery"


# PostgreSQL: one throwaway cluster per session, one fresh database per test ----------------


@dataclass
class PostgresServer:
    """A running throwaway cluster: its binaries, data folder and maintenance URL."""

    bin_dir: Path
    base: Path
    admin_url: sa.URL

    def new_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.admin_url.set(database=name).render_as_string(hide_password=False)


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb and pg_ctl; fail if none."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()]
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (initdb, pg_ctl): "
            "run `apt-get install -y postgresql` (Debian); these tests are never skipped",
            pytrace=False,
        )
    return max(found, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)


def as_cluster_owner(command: list[str]) -> list[str]:
    """Run ``command`` as ``postgres`` when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def run_checked(command: list[str], what: str) -> None:
    done = subprocess.run(as_cluster_owner(command), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"PostgreSQL {what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL cluster on 127.0.0.1 in a temporary folder; stop and delete it at the end."""
    bin_dir = postgres_bin_dir()
    base = Path(tempfile.mkdtemp(prefix="minewatch-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    data = base / "data"
    try:
        run_checked([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                     "-E", "UTF8", "--no-locale", "--no-sync"], "initdb")  # fmt: skip
        # Durability off: a test cluster trades crash safety for speed.
        options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        run_checked([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "30",
                     "-o", options, "start"], "start")  # fmt: skip
        url = sa.URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port, database="postgres")
        yield PostgresServer(bin_dir, base, url)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(as_cluster_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


# Fixtures shared by both backends -------------------------------------------------------


@pytest.fixture(autouse=True)
def no_database_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's MINEWATCH_DATABASE_URL must never receive test data."""
    monkeypatch.delenv(rs.DATABASE_URL_ENV, raising=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite beside the results folder, else the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """An analysis output folder (its SQLite database lives beside it)."""
    folder = tmp_path / "results"
    folder.mkdir()
    return folder


@pytest.fixture
def store(results: Path, database_url: str | None) -> Iterator[ReviewStore]:
    with open_store(results, database_url, FAST_HASHER) as opened:
        yield opened


def review(store: ReviewStore, flag_id: str, version: int, status: str = "under review", **changes) -> rs.Review:
    """Save a review with sensible defaults."""
    values = {"note": f"{status} note", "attachments": [], "reviewer": "alice"} | changes
    return store.update(flag_id, status=status, expected_version=version, **values)


def table_rows(store: ReviewStore, table: sa.Table) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]


# Migrations ---------------------------------------------------------------------------


def test_migrations_create_the_schema_once(results, database_url):
    with open_store(results, database_url) as first:
        versions = table_rows(first, rs.schema_version)
        inspector = sa.inspect(first.engine)
        for table in rs.metadata.sorted_tables:  # the migrations build what the code expects
            assert [c["name"] for c in inspector.get_columns(table.name)] == list(table.columns.keys())
    assert [v[0] for v in versions] == list(range(1, len(rs.MIGRATIONS) + 1))
    with open_store(results, database_url) as again:
        assert table_rows(again, rs.schema_version) == versions  # nothing re-applied


def test_old_database_is_upgraded_with_its_data_kept(results, database_url):
    engine = rs.create_engine(rs._database_url(results, database_url))
    assert rs.migrate(engine, rs.MIGRATIONS[:1]) == 1  # a database written by the first release
    old = ReviewStore(engine, FAST_HASHER)
    saved = review(old, "F-1", 0, note="seen from the road")
    assert not sa.inspect(engine).has_table("users")
    old.close()
    with open_store(results, database_url, FAST_HASHER) as upgraded:
        assert [v[0] for v in table_rows(upgraded, rs.schema_version)] == [1, 2]
        assert upgraded.current() == {"F-1": saved}
        assert [event.note for event in upgraded.history("F-1")] == ["seen from the road"]
        upgraded.add_user("alice", PASSWORD, "team")
        assert upgraded.authenticate("alice", PASSWORD).role == "team"


def test_failed_migration_leaves_the_previous_version(results, database_url, monkeypatch):
    def broken(conn):
        rs._migration_2_users(conn)
        raise RuntimeError("power cut")

    engine = rs.create_engine(rs._database_url(results, database_url))
    with pytest.raises(RuntimeError):
        rs.migrate(engine, (rs._migration_1_reviews, broken))
    assert not sa.inspect(engine).has_table("users")  # the DDL was rolled back with its version row
    with engine.connect() as conn:
        assert rs._schema_version(conn) == 1
    engine.dispose()
    with open_store(results, database_url, FAST_HASHER) as store:
        store.add_user("alice", PASSWORD, "team")


def test_database_newer_than_the_code_is_refused(results, database_url):
    with open_store(results, database_url) as store, store.engine.begin() as conn:
        conn.execute(rs.schema_version.insert().values(version=99, applied_at=datetime.now(UTC)))
    with pytest.raises(ReviewStoreError, match="schema version 99 is newer.*upgrade minewatch"):
        open_store(results, database_url)


# Where the database lives ----------------------------------------------------------------


def test_sqlite_file_beside_the_results_in_wal_mode_with_foreign_keys(results):
    with open_store(results) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (results.parent / "results.reviews.sqlite").is_file()
    assert list(results.iterdir()) == []  # nothing inside the folder that re-analysis replaces


def test_switching_to_wal_is_tried_again_while_another_process_switches(monkeypatch):
    """gunicorn -w 2 on a new results folder: SQLite answers "locked" at once, without its busy timeout, to the
    second of two connections switching the new file to WAL (about 1 start in 30 failed to boot)."""
    import sqlite3

    class Cursor:
        def __init__(self, failures: list[str]):
            self.failures, self.switches = failures, 0

        def execute(self, sql: str):
            if sql == "PRAGMA journal_mode":
                self.mode = "delete"
            else:
                self.switches += 1
                if self.failures:
                    raise sqlite3.OperationalError(self.failures.pop(0))
                self.mode = "wal"
            return self

        def fetchone(self):
            return (self.mode,)

    monkeypatch.setattr(rs, "WAL_SWITCH_WAIT_S", 0)
    busy = Cursor(["database is locked", "database is locked"])
    rs._switch_to_wal(busy)
    assert busy.switches == 3 and busy.mode == "wal"
    broken = Cursor(["disk I/O error"])
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        rs._switch_to_wal(broken)
    assert broken.switches == 1  # only a lock is waited for
    stuck = Cursor(["database is locked"] * rs.WAL_SWITCH_TRIES)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        rs._switch_to_wal(stuck)
    assert stuck.switches == rs.WAL_SWITCH_TRIES


def test_database_url_from_argument_then_environment(tmp_path, monkeypatch):
    explicit = f"sqlite:///{tmp_path / 'explicit.sqlite'}"
    monkeypatch.setenv(rs.DATABASE_URL_ENV, f"sqlite:///{tmp_path / 'env.sqlite'}")
    open_store(None, explicit).close()
    open_store(tmp_path / "results").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.sqlite", "explicit.sqlite"]
    monkeypatch.delenv(rs.DATABASE_URL_ENV)
    with pytest.raises(InputError, match="no database"):
        open_store(None)


def test_database_urls_are_checked_and_postgres_means_psycopg_3():
    assert rs.create_engine("postgresql://u:secret@db.example/minewatch").dialect.driver == "psycopg"
    with pytest.raises(InputError, match="only sqlite and postgresql"):
        rs.create_engine("mysql://u:secret@db.example/minewatch")
    with pytest.raises(InputError, match="not a URL"):
        rs.create_engine("reviews.sqlite")


def test_unreachable_database_is_one_clear_error():
    with pytest.raises(ReviewStoreError, match=r"review database postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x"):
        open_store(None, "postgresql://u:secret@127.0.0.1:1/x")


# Reviews ----------------------------------------------------------------------------------


def test_update_current_and_history(store):
    before = datetime.now(UTC)
    first = review(store, "F-1", 0, status="under_review", attachments=["pit.jpg", "https://x.org/a.pdf"])
    second = review(store, "F-1", 1, status="confirmed", note="fresh pit, 3 excavators", reviewer="Bob")
    review(store, "F-2", 0, status="dismissed")

    assert (first.version, second.version) == (1, 2)
    assert first.status == "under review" and first.attachments == ("pit.jpg", "https://x.org/a.pdf")
    assert second.reviewer == "bob"
    assert before <= second.updated_at <= datetime.now(UTC) and second.updated_at.utcoffset() == timedelta(0)
    assert store.current() == {"F-1": second, "F-2": store.current(["F-2"])["F-2"]}
    assert store.current(["F-1", "never-reviewed"]) == {"F-1": second}
    assert store.current([]) == {}
    history = store.history("F-1")
    assert [(e.version, e.old_status, e.new_status, e.reviewer) for e in history] == [
        (1, "new", "under review", "alice"),
        (2, "under review", "confirmed", "bob"),
    ]
    assert history[0].attachments == first.attachments and history[1].note == "fresh pit, 3 excavators"
    assert history[1].changed_at == second.updated_at
    assert store.history("never-reviewed") == []


def test_current_answers_for_thousands_of_flag_ids(store):
    review(store, "F-0999", 0)
    wanted = [f"F-{i:04d}" for i in range(2500)]  # more ids than one IN (...) list holds
    assert list(store.current(wanted)) == ["F-0999"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "verified"}, "review status 'verified': use one of new, under review"),
        ({"attachments": ["javascript:alert(1)"]}, "file name or an http"),
        ({"attachments": "photo.jpg"}, "give a list"),
        ({"reviewer": "a b"}, "reviewer 'a b'"),
        ({"expected_version": -1}, "expected_version -1"),
        ({"flag_id": ""}, "flag_id ''"),
    ],
)
def test_invalid_reviews_are_refused_and_nothing_is_written(store, changes, message):
    values = {"flag_id": "F-1", "status": "confirmed", "note": "", "attachments": [], "reviewer": "alice"}
    values |= {"expected_version": 0} | changes
    with pytest.raises(InputError, match=message):
        store.update(values.pop("flag_id"), **values)
    assert store.current() == {}


def test_second_reviewer_gets_a_conflict_and_nothing_is_lost(results, database_url, store):
    with open_store(results, database_url) as other_worker:  # another process, same database
        alice = review(store, "F-1", 0, note="alice was first", reviewer="alice")
        with pytest.raises(ReviewConflict) as conflict:
            review(other_worker, "F-1", 0, note="bob also started from 'new'", reviewer="bob")
        assert conflict.value.current == alice
        assert "alice saved version 1" in str(conflict.value) and isinstance(conflict.value, MinewatchError)

        alice2 = review(store, "F-1", 1, status="confirmed", note="alice again")
        with pytest.raises(ReviewConflict) as conflict:
            review(other_worker, "F-1", 1, status="dismissed", reviewer="bob")
        assert conflict.value.current == alice2
        bob = review(other_worker, "F-1", 2, status="dismissed", note="bob, after reloading", reviewer="bob")

    assert store.current()["F-1"] == bob
    assert [e.note for e in store.history("F-1")] == ["alice was first", "alice again", "bob, after reloading"]


@pytest.mark.parametrize("start_version", [0, 1])
def test_simultaneous_saves_of_one_version_let_exactly_one_win(results, database_url, store, start_version):
    if start_version:
        review(store, "F-1", 0)
    stores = [store, open_store(results, database_url)]
    barrier, outcomes = threading.Barrier(8), []

    def save(worker: int) -> None:
        barrier.wait()
        try:
            review(stores[worker % 2], "F-1", start_version, note=f"worker {worker}", reviewer=f"user{worker}")
            outcomes.append("saved")
        except ReviewConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stores[1].close()
    assert sorted(outcomes) == ["conflict"] * 7 + ["saved"]
    assert store.current()["F-1"].version == start_version + 1
    assert len(store.history("F-1")) == start_version + 1


def reanalyse(results: Path, flag_ids: list[str]) -> None:
    """Stand-in for ``analyze --out results``: the folder is replaced wholesale."""
    with atomic_folder(results, "provenance.json") as staging:
        write_text(staging / "provenance.json", "{}")
        write_text(staging / "flags.csv", "flag_id\n" + "\n".join(flag_ids) + "\n")


def test_review_survives_reanalysis(results, database_url):
    reanalyse(results, ["F-1", "F-2"])
    with open_store(results, database_url, FAST_HASHER) as before:
        saved = review(before, "F-1", 0, status="confirmed", note="visited 2024-05-02")
    reanalyse(results, ["F-1", "F-2", "F-3"])  # same inputs + one new flag: stable ids
    with open_store(results, database_url, FAST_HASHER) as after:
        assert after.current(["F-1", "F-2", "F-3"]) == {"F-1": saved}
        assert review(after, "F-1", 1, status="dismissed").version == 2


def test_flag_missing_from_new_analysis_keeps_its_history(store):
    review(store, "GONE", 0, note="pit seen")
    review(store, "GONE", 1, status="confirmed", note="confirmed on site")
    new_analysis = ["F-7", "F-8"]
    assert store.current(new_analysis) == {}
    assert [e.note for e in store.history("GONE")] == ["pit seen", "confirmed on site"]
    assert store.current()["GONE"].status == "confirmed"


# Crashes ------------------------------------------------------------------------------


def test_error_inside_the_transaction_leaves_no_partial_write(store, monkeypatch):
    kept = review(store, "F-1", 0)

    def power_cut(*args) -> None:
        raise RuntimeError("power cut after the review row, before its history row")

    monkeypatch.setattr(rs, "_append_event", power_cut)
    for flag_id, version in (("F-1", 1), ("F-2", 0)):
        with pytest.raises(RuntimeError):
            review(store, flag_id, version, status="dismissed")
    assert store.current() == {"F-1": kept}
    assert len(table_rows(store, rs.review_history)) == 1
    monkeypatch.undo()
    assert review(store, "F-2", 0).version == 1  # nothing stuck: the same write now goes through


KILLED_WRITER = """
import sys, time
from layers import review_store as rs

def stall(*args):
    print("inside the transaction", flush=True)
    time.sleep(60)

rs._append_event = stall
store = rs.open_store(sys.argv[1], sys.argv[2] or None)
store.update("F-1", status="dismissed", note="half written", attachments=[], reviewer="bob", expected_version=1)
"""


def test_killed_writer_leaves_the_database_consistent(results, database_url, store):
    kept = review(store, "F-1", 0)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(results), database_url or ""],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "inside the transaction"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
    assert store.current() == {"F-1": kept}
    assert len(store.history("F-1")) == 1
    assert review(store, "F-1", 1, status="confirmed").version == 2  # no lock left behind


# Accounts -----------------------------------------------------------------------------


def test_accounts(store):
    alice = store.add_user("Alice", PASSWORD, "team")
    assert (alice.username, alice.role, alice.active) == ("alice", "team", True)
    store.add_user("root.admin", PASSWORD + "!", "admin")
    with pytest.raises(InputError, match="user 'alice' already exists"):
        store.add_user("alice", "another long password", "admin")
    assert [(u.username, u.role) for u in store.list_users()] == [("alice", "team"), ("root.admin", "admin")]

    assert store.authenticate("alice", PASSWORD) == store.get_user("alice")
    assert store.authenticate(" ALICE ", PASSWORD).username == "alice"
    assert store.authenticate("alice", PASSWORD.upper()) is None
    assert store.authenticate("nobody", PASSWORD) is None
    assert store.authenticate("alice", None) is None

    store.set_role("alice", "admin")
    assert store.get_user("alice").role == "admin"
    store.set_password("alice", "a new passphrase")
    assert store.authenticate("alice", PASSWORD) is None
    assert store.authenticate("alice", "a new passphrase").role == "admin"
    store.set_active("alice", False)
    assert store.authenticate("alice", "a new passphrase") is None
    store.remove_user("alice")
    assert store.get_user("alice") is None and store.authenticate("alice", "a new passphrase") is None
    with pytest.raises(InputError, match="no user 'alice'"):
        store.set_role("alice", "team")
    assert [u.username for u in store.list_users()] == ["root.admin"]


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("al", PASSWORD, "team", "username 'al': use 3 to 32 characters"),
        ("al ice", PASSWORD, "team", "username 'al ice'"),
        ("x" * 33, PASSWORD, "team", "use 3 to 32"),
        ("alice", "short", "team", "password: use 10 to"),
        ("alice", PASSWORD, "owner", "role 'owner': use one of team, admin"),
    ],
)
def test_bad_accounts_are_refused(store, username, password, role, message):
    with pytest.raises(InputError, match=message):
        store.add_user(username, password, role)
    assert store.list_users() == []


def test_password_hashes_are_argon2id_and_renewed_when_parameters_change(results, database_url, store):
    store.add_user("alice", PASSWORD, "team")
    stored = table_rows(store, rs.users)[0][2]
    assert stored.startswith("$argon2id$") and "m=1024,t=1" in stored
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    with open_store(results, database_url, stronger) as upgraded:
        assert upgraded.authenticate("alice", PASSWORD).username == "alice"
        renewed = table_rows(upgraded, rs.users)[0][2]
        assert "m=2048,t=2" in renewed
        assert upgraded.authenticate("alice", PASSWORD) is not None


class CountingHasher(PasswordHasher):
    """The test hasher, counting verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, password_hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(password_hash, password)


def test_unknown_users_cost_one_verification_like_known_ones(store):
    store.add_user("alice", PASSWORD, "team")
    store.set_active("alice", False)
    store.add_user("bob", PASSWORD, "team")
    counting = ReviewStore(store.engine, CountingHasher())
    for username in ("bob", "alice", "nobody", "al"):  # known, suspended, unknown, invalid
        assert counting.authenticate(username, "wrong password") is None
    assert counting.hasher.verified == 4


# The users command ---------------------------------------------------------------------


def users_cli(monkeypatch, capsys, results, database_url, *argv, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    url = ["--database-url", database_url] if database_url else []
    status = run_users_cli([*url, *argv], results)
    out, err = capsys.readouterr()
    return status, out, err


def test_users_command_end_to_end(results, database_url, monkeypatch, capsys):
    def cli(*argv, stdin=""):
        return users_cli(monkeypatch, capsys, results, database_url, *argv, stdin=stdin)

    assert cli("add", "alice", "--role", "team", "--password-stdin", stdin=PASSWORD + "\n")[:2] == (
        0,
        "added alice (team)\n",
    )
    assert cli("add", "bob", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\r\n")[0] == 0
    status, out, _ = cli("list")
    assert status == 0 and [line.split()[:2] for line in out.splitlines()[1:]] == [["alice", "team"], ["bob", "admin"]]
    assert cli("role", "alice", "admin")[:2] == (0, "alice is now admin\n")
    assert cli("passwd", "alice", "--password-stdin", stdin="a new passphrase\n")[0] == 0
    assert cli("remove", "bob")[0] == 0

    with open_store(results, database_url) as store:
        assert store.authenticate("alice", "a new passphrase").role == "admin"
        assert store.authenticate("bob", PASSWORD) is None

    for argv, stdin, expected in [
        (("add", "alice", "--role", "team", "--password-stdin"), PASSWORD, "user 'alice' already exists"),
        (("add", "carol", "--role", "team", "--password-stdin"), "short\n", "password: use 10"),
        (("passwd", "nobody", "--password-stdin"), PASSWORD, "no user 'nobody'"),
        (("remove", "nobody"), "", "no user 'nobody'"),
    ]:
        status, out, err = cli(*argv, stdin=stdin)
        assert (status, out) == (2, "") and err.count("\n") == 1 and expected in err
    status, _, err = cli("role", "alice", "owner")
    assert status == 2 and "invalid choice: 'owner'" in err


def test_users_command_prompts_twice_without_stdin(results, monkeypatch, capsys):
    answers = iter([PASSWORD, PASSWORD + "typo"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    status, out, err = users_cli(monkeypatch, capsys, results, None, "add", "alice", "--role", "team")
    assert (status, out) == (2, "") and "the two entries differ" in err
    answers = iter([PASSWORD, PASSWORD])
    assert users_cli(monkeypatch, capsys, results, None, "add", "alice", "--role", "team")[0] == 0


def test_users_command_in_a_subprocess_reads_the_password_from_a_pipe(results):
    script = "import sys; from pathlib import Path; from layers.users_cli import run_users_cli; "
    script += "sys.exit(run_users_cli(sys.argv[1:], Path(sys.argv[1]).parent))"
    done = subprocess.run(
        [sys.executable, "-c", script, "--results", str(results), "add", "field.lead", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "added field.lead (admin)\n", "")
    with open_store(results) as store:
        assert store.authenticate("field.lead", PASSWORD).role == "admin"
