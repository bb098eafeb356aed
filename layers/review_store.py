"""Reviews of flags and team accounts, kept in SQLite beside the results or in PostgreSQL.

A review is keyed by ``flag_id`` alone: flag ids are stable, so a review survives a
re-run of the analysis, and a flag that disappears from a new analysis keeps its review
and history. Each flag has one current review, with an integer ``version`` for
optimistic locking, and an append-only history of every change.

The database is ``MINEWATCH_DATABASE_URL`` when set (e.g.
``postgresql+psycopg://minewatch@db.example/minewatch``), else a SQLite file beside the
results folder (``results/demo`` -> ``results/demo.reviews.sqlite``), created on first
use. It sits *beside* the folder, not in it, because :mod:`layers.atomic` replaces the
whole results folder on re-analysis. Opening a store applies pending migrations, each in
its own transaction; every write is one transaction, so a crash leaves the database as
it was before the write or after it, never in between.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Engine

from geo.errors import InputError, MinewatchError

DATABASE_URL_ENV = "MINEWATCH_DATABASE_URL"
REVIEW_STATUSES = ("new", "under review", "confirmed", "dismissed")
ROLES = ("team", "admin")
USERNAME_RULE = re.compile(r"[a-z0-9_.-]{3,32}")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_FLAG_ID_LENGTH = 200
MAX_NOTE_LENGTH = 20_000
MAX_ATTACHMENTS = 50
MAX_ATTACHMENT_LENGTH = 2_000
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_MIGRATION_LOCK_KEY = 7_251_003  # any constant: serialises migrations across processes on PostgreSQL
_WRITE = "minewatch_write"  # execution option: SQLite takes the write lock at BEGIN
_IN_CHUNK = 500  # flag ids per IN (...) list, well below every backend's parameter limit


class ReviewStoreError(MinewatchError):
    """The review database cannot be reached or has a schema this minewatch does not know."""


class ReviewConflict(MinewatchError):  # noqa: N818 (the name the dashboard uses)
    """A review changed since the editor read it; ``current`` is what is stored now."""

    def __init__(self, flag_id: str, expected_version: int, current: Review | None) -> None:
        self.flag_id = flag_id
        self.expected_version = expected_version
        self.current = current
        if current is None:
            found = "it has no review in this database"
        else:
            found = f"{current.reviewer} saved version {current.version} ({current.status}) at {current.updated_at:%Y-%m-%d %H:%M} UTC"
        super().__init__(
            f"flag {flag_id}: not saved: you edited version {expected_version}, but {found}; reload and try again"
        )


@dataclass(frozen=True)
class Review:
    """The current review of one flag; ``updated_at`` is UTC."""

    flag_id: str
    status: str
    note: str
    attachments: tuple[str, ...]
    reviewer: str
    updated_at: datetime
    version: int


@dataclass(frozen=True)
class ReviewEvent:
    """One change to a flag's review: who, when (UTC), status before and after, the note."""

    flag_id: str
    version: int
    old_status: str
    new_status: str
    note: str
    attachments: tuple[str, ...]
    reviewer: str
    changed_at: datetime


@dataclass(frozen=True)
class User:
    """A team account (its password hash never leaves the store)."""

    username: str
    role: str
    created_at: datetime
    active: bool


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC and read back timezone-aware on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Convert to UTC; SQLite keeps the wall time, PostgreSQL the instant."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Return an aware UTC datetime (SQLite returns naive UTC wall time)."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The schema as the latest migration leaves it (tests compare the two).
metadata = sa.MetaData()
schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("flag_id", sa.String(MAX_FLAG_ID_LENGTH), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("attachments", sa.JSON, nullable=False),
    sa.Column("reviewer", sa.String(32), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
review_history = sa.Table(
    "review_history",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flag_id", sa.String(MAX_FLAG_ID_LENGTH), sa.ForeignKey("reviews.flag_id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("old_status", sa.String(20), nullable=False),
    sa.Column("new_status", sa.String(20), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("attachments", sa.JSON, nullable=False),
    sa.Column("reviewer", sa.String(32), nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("flag_id", "version", name="uq_review_history_flag_version"),
)
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(32), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)


# Migrations: append only. Each one creates what it needs from its own table definitions
# (a snapshot of that version), so a later change to the tables above never alters it.
def _migration_1_reviews(conn: Connection) -> None:
    """Create the current review per flag and its append-only history."""
    snapshot = sa.MetaData()
    sa.Table(
        "reviews",
        snapshot,
        sa.Column("flag_id", sa.String(MAX_FLAG_ID_LENGTH), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("attachments", sa.JSON, nullable=False),
        sa.Column("reviewer", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    sa.Table(
        "review_history",
        snapshot,
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flag_id", sa.String(MAX_FLAG_ID_LENGTH), sa.ForeignKey("reviews.flag_id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("old_status", sa.String(20), nullable=False),
        sa.Column("new_status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("attachments", sa.JSON, nullable=False),
        sa.Column("reviewer", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("flag_id", "version", name="uq_review_history_flag_version"),
    )
    snapshot.create_all(conn)


def _migration_2_users(conn: Connection) -> None:
    """Create the team accounts."""
    snapshot = sa.MetaData()
    sa.Table(
        "users",
        snapshot,
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(32), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    snapshot.create_all(conn)


Migration = Callable[[Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_migration_1_reviews, _migration_2_users)  # version = position + 1


def database_path(results_dir: str | Path) -> Path:
    """The default SQLite file of a results folder: beside it, ``<folder>.reviews.sqlite``."""
    folder = Path(results_dir).expanduser().resolve()
    return folder.with_name(f"{folder.name}.reviews.sqlite")


def open_store(
    results_dir: str | Path | None,
    database_url: str | None = None,
    password_hasher: PasswordHasher | None = None,
) -> ReviewStore:
    """Open (and migrate) the review database.

    Parameters
    ----------
    results_dir
        The analysis output folder; its SQLite database is :func:`database_path`.
    database_url
        A SQLAlchemy URL; when None, ``MINEWATCH_DATABASE_URL``, else the SQLite file.
    password_hasher
        Argon2id parameters for new hashes (argon2-cffi's defaults when None).
    """
    engine = create_engine(_database_url(results_dir, database_url))
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return ReviewStore(engine, password_hasher)


def create_engine(url: str | sa.URL) -> Engine:
    """A SQLAlchemy engine for PostgreSQL (psycopg 3) or SQLite (WAL, foreign keys on)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise InputError(f"database URL {str(url)!r} is not a URL; e.g. postgresql+psycopg://user@host/db") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not SQLAlchemy's psycopg2 default
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError(f"database URL {_shown(parsed)}: only sqlite and postgresql are supported")
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    except ImportError as error:
        raise InputError(f"database URL {_shown(parsed)}: {error}; install it: pip install 'psycopg[binary]'") from None
    except sa.exc.ArgumentError as error:
        raise InputError(f"database URL {_shown(parsed)}: {error}") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def migrate(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the pending ``migrations``, each in its own transaction; return the schema version."""
    with _transaction(engine, write=False) as conn:
        version = _schema_version(conn) if sa.inspect(conn).has_table("schema_version") else 0
    _refuse_newer(engine, version, len(migrations))
    for number, migration in enumerate(migrations, start=1):
        if number > version:
            _apply(engine, number, migration)
    return max(version, len(migrations))


class ReviewStore:
    """Reviews and accounts in one database; safe to share between threads and processes."""

    def __init__(self, engine: Engine, password_hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        self.hasher = password_hasher or PasswordHasher()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReviewStore({_shown(self.engine.url)})"

    def close(self) -> None:
        """Close the store's database connections."""
        self.engine.dispose()

    # Reviews ---------------------------------------------------------------------------

    def current(self, flag_ids: Iterable[str] | None = None) -> dict[str, Review]:
        """The current review of each flag (all, or those in ``flag_ids``); unreviewed flags are absent."""
        query = sa.select(reviews)
        with self._read() as conn:
            if flag_ids is None:
                rows = list(conn.execute(query))
            else:
                wanted = sorted(set(flag_ids))
                chunks = (wanted[i : i + _IN_CHUNK] for i in range(0, len(wanted), _IN_CHUNK))
                rows = [row for chunk in chunks for row in conn.execute(query.where(reviews.c.flag_id.in_(chunk)))]
        return {row.flag_id: _review(row) for row in rows}

    def history(self, flag_id: str) -> list[ReviewEvent]:
        """Every change to the review of ``flag_id``, oldest first."""
        query = sa.select(review_history).where(review_history.c.flag_id == flag_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(review_history.c.version))
            return [_event(row) for row in rows]

    def update(
        self,
        flag_id: str,
        *,
        status: str,
        note: str,
        attachments: Sequence[str],
        reviewer: str,
        expected_version: int,
    ) -> Review:
        """Save a review of ``flag_id`` over the version its editor saw, and record the change.

        Parameters
        ----------
        flag_id, status, note, attachments, reviewer
            The new review; ``status`` is one of :data:`REVIEW_STATUSES`, ``attachments``
            are file names or http(s) URLs.
        expected_version
            The version the editor read: 0 for a flag never reviewed.

        Raises
        ------
        ReviewConflict
            When someone saved another version first; it carries the stored review.
        InputError
            When a value is invalid.
        """
        review = Review(
            flag_id=_check_flag_id(flag_id),
            status=_check_status(status),
            note=_check_note(note),
            attachments=_check_attachments(attachments),
            reviewer=_check_username(reviewer, "reviewer"),
            updated_at=_now(),
            version=_check_version(expected_version) + 1,
        )
        try:
            with self._write() as conn:
                old_status = _write_review(conn, review)
                _append_event(conn, review, old_status)
        except _StaleVersionError:
            raise ReviewConflict(
                review.flag_id, expected_version, self.current([review.flag_id]).get(review.flag_id)
            ) from None
        return review

    # Accounts --------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str) -> User:
        """Create an active account; refuse a taken username."""
        user = User(_check_username(username), _check_role(role), _now(), True)
        password_hash = self.hasher.hash(_check_password(password))
        try:
            with self._write() as conn:
                conn.execute(users.insert().values(password_hash=password_hash, **asdict(user)))
        except sa.exc.IntegrityError:
            raise InputError(f"user {user.username!r} already exists; change it with 'passwd' or 'role'") from None
        return user

    def set_password(self, username: str, password: str) -> None:
        """Replace the password of ``username``."""
        password_hash = self.hasher.hash(_check_password(password))
        self._update_user(username, password_hash=password_hash)

    def set_role(self, username: str, role: str) -> None:
        """Make ``username`` a ``team`` member or an ``admin``."""
        self._update_user(username, role=_check_role(role))

    def set_active(self, username: str, active: bool) -> None:
        """Suspend (``False``) or restore (``True``) the account of ``username``."""
        self._update_user(username, active=bool(active))

    def remove_user(self, username: str) -> None:
        """Delete the account of ``username``; the reviews it wrote keep its name."""
        name = _normal_username(username)
        with self._write() as conn:
            if conn.execute(users.delete().where(users.c.username == name)).rowcount == 0:
                raise InputError(f"no user {name!r}; see 'list'")

    def get_user(self, username: str) -> User | None:
        """The account of ``username``, or None (e.g. to re-check a session)."""
        with self._read() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == _normal_username(username))).first()
        return _user(row) if row is not None else None

    def list_users(self) -> list[User]:
        """Every account, by username."""
        with self._read() as conn:
            return [_user(row) for row in conn.execute(sa.select(users).order_by(users.c.username))]

    def authenticate(self, username: str, password: str) -> User | None:
        """The active account matching ``username`` and ``password``, else None.

        An unknown or suspended user costs one hash verification too, so response times
        do not reveal which usernames exist. A hash made with older Argon2 parameters is
        replaced after a successful login.
        """
        name = _normal_username(username)
        with self._read() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == name)).first()
        usable = row is not None and row.active
        if not self._verify(row.password_hash if usable else self._dummy_hash, password) or not usable:
            return None
        if self.hasher.check_needs_rehash(row.password_hash):
            self._rehash(name, row.password_hash, password)
        return _user(row)

    # Internals -------------------------------------------------------------------------

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash("minewatch: no such user")

    def _verify(self, password_hash: str, password: str) -> bool:
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            password = ""
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _rehash(self, name: str, old_hash: str, password: str) -> None:
        # Only over the hash just verified: a concurrent password change wins.
        new_hash = self.hasher.hash(password)
        with self._write() as conn:
            query = users.update().where(users.c.username == name, users.c.password_hash == old_hash)
            conn.execute(query.values(password_hash=new_hash))

    def _update_user(self, username: str, **values: object) -> None:
        name = _normal_username(username)
        with self._write() as conn:
            if conn.execute(users.update().where(users.c.username == name).values(**values)).rowcount == 0:
                raise InputError(f"no user {name!r}; see 'list', or add it with 'add'")

    def _read(self) -> AbstractContextManager[Connection]:
        return _transaction(self.engine, write=False)

    def _write(self) -> AbstractContextManager[Connection]:
        return _transaction(self.engine, write=True)


class _StaleVersionError(Exception):
    """The stored review is not at the version the editor saw."""


def _write_review(conn: Connection, review: Review) -> str:
    """Write ``review`` over version ``review.version - 1``; return the status it replaces."""
    row = asdict(review) | {"attachments": list(review.attachments)}
    expected = review.version - 1
    if expected == 0:
        try:  # the primary key refuses a second first review (the transaction is then rolled back)
            conn.execute(reviews.insert().values(**row))
        except sa.exc.IntegrityError:
            raise _StaleVersionError from None
        return "new"
    mine = sa.and_(reviews.c.flag_id == review.flag_id, reviews.c.version == expected)
    old_status = conn.execute(sa.select(reviews.c.status).where(mine)).scalar_one_or_none()
    # The WHERE repeats the version test: with concurrent writers only one UPDATE matches.
    if old_status is None or conn.execute(reviews.update().where(mine).values(**row)).rowcount != 1:
        raise _StaleVersionError
    return old_status


def _append_event(conn: Connection, review: Review, old_status: str) -> None:
    conn.execute(
        review_history.insert().values(
            flag_id=review.flag_id,
            version=review.version,
            old_status=old_status,
            new_status=review.status,
            note=review.note,
            attachments=list(review.attachments),
            reviewer=review.reviewer,
            changed_at=review.updated_at,
        )
    )


def _review(row: sa.Row) -> Review:
    return Review(row.flag_id, row.status, row.note, tuple(row.attachments), row.reviewer, row.updated_at, row.version)


def _event(row: sa.Row) -> ReviewEvent:
    return ReviewEvent(
        row.flag_id,
        row.version,
        row.old_status,
        row.new_status,
        row.note,
        tuple(row.attachments),
        row.reviewer,
        row.changed_at,
    )


def _user(row: sa.Row) -> User:
    return User(row.username, row.role, row.created_at, bool(row.active))


# Validation: every message names the value and says what is allowed.
def _check_flag_id(flag_id: str) -> str:
    if not isinstance(flag_id, str) or not flag_id.strip() or len(flag_id) > MAX_FLAG_ID_LENGTH:
        raise InputError(f"flag_id {flag_id!r}: give the flag's id (1 to {MAX_FLAG_ID_LENGTH} characters)")
    return flag_id


def _check_status(status: str) -> str:
    normal = " ".join(str(status).strip().lower().replace("_", " ").replace("-", " ").split())
    if normal not in REVIEW_STATUSES:
        raise InputError(f"review status {status!r}: use one of {', '.join(REVIEW_STATUSES)}")
    return normal


def _check_note(note: str) -> str:
    note = "" if note is None else note
    if not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH:
        raise InputError(f"review note: must be text of at most {MAX_NOTE_LENGTH} characters")
    return note


def _check_attachments(attachments: Sequence[str]) -> tuple[str, ...]:
    if isinstance(attachments, str) or len(attachments) > MAX_ATTACHMENTS:
        raise InputError(f"attachments: give a list of at most {MAX_ATTACHMENTS} file names or URLs")
    return tuple(_check_attachment(item) for item in attachments)


def _check_attachment(reference: str) -> str:
    text = reference.strip() if isinstance(reference, str) else ""
    scheme = _URL_SCHEME.match(text)
    if (
        not text
        or len(text) > MAX_ATTACHMENT_LENGTH
        or _CONTROL_CHARACTERS.search(text)
        or (scheme and scheme.group(0).lower() not in ("http:", "https:"))
    ):
        raise InputError(f"attachment {reference!r}: give a file name or an http(s) URL without control characters")
    return text


def _check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InputError(f"expected_version {version!r}: give the version you read (0 for a new review)")
    return version


def _normal_username(username: str) -> str:
    return username.strip().lower() if isinstance(username, str) else ""


def _check_username(username: str, what: str = "username") -> str:
    name = _normal_username(username)
    if not USERNAME_RULE.fullmatch(name):
        raise InputError(
            f"{what} {username!r}: use 3 to 32 characters from a-z, 0-9, '_', '.' and '-' (e.g. 'field.team-1')"
        )
    return name


def _check_role(role: str) -> str:
    normal = role.strip().lower() if isinstance(role, str) else role
    if normal not in ROLES:
        raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}")
    return normal


def _check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InputError(
            f"password: use {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters (a passphrase of a few words works)"
        )
    return password


def _now() -> datetime:
    return datetime.now(UTC)


# Database plumbing -----------------------------------------------------------------------


def _database_url(results_dir: str | Path | None, database_url: str | None) -> str | sa.URL:
    url = database_url or os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    if results_dir is None:
        raise InputError(f"reviews: no database; give --results DIR or --database-url, or set {DATABASE_URL_ENV}")
    path = database_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return sa.URL.create("sqlite+pysqlite", database=str(path))


def _shown(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


@contextmanager
def _transaction(engine: Engine, write: bool) -> Iterator[Connection]:
    """One transaction, committed on success and rolled back on any exception."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE: write})
            with conn.begin():
                yield conn
    except sa.exc.OperationalError as error:
        message = " ".join(str(error.orig or error).split())
        raise ReviewStoreError(f"review database {_shown(engine.url)}: {message}") from None


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_begin), so DDL is transactional too.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


WAL_SWITCH_TRIES = 100
WAL_SWITCH_WAIT_S = 0.05


def _switch_to_wal(cursor: Any) -> None:
    """Put the database in WAL mode (kept in the file), waiting for other processes doing the same.

    SQLite answers "database is locked" at once, without the busy timeout, when two
    connections switch a new database's journal mode together: ``gunicorn -w 2`` on a
    new results folder failed to boot about once in 30 starts. So the switch is tried
    again for up to 5 s; a database already in WAL mode needs no switch.
    """
    for attempt in range(WAL_SWITCH_TRIES):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt + 1 == WAL_SWITCH_TRIES:
                raise
            time.sleep(WAL_SWITCH_WAIT_S)


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock at once: a deferred transaction that reads and then
    # writes can fail with "database is locked" when another writer got in between.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _schema_version(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.coalesce(sa.func.max(schema_version.c.version), 0))).scalar_one()


def _refuse_newer(engine: Engine, version: int, known: int) -> None:
    if version > known:
        raise ReviewStoreError(
            f"review database {_shown(engine.url)}: schema version {version} is newer than this minewatch "
            f"knows ({known}); upgrade minewatch"
        )


def _apply(engine: Engine, number: int, migration: Migration) -> None:
    """Apply migration ``number`` unless another process just did; schema and version commit together."""
    with _transaction(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        schema_version.create(conn, checkfirst=True)
        if _schema_version(conn) >= number:
            return
        migration(conn)
        conn.execute(schema_version.insert().values(version=number, applied_at=_now()))
