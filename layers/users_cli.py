"""``python app.py users``: manage the team's accounts from the command line.

Whoever can run this command on the server can manage accounts; no login is asked.
Passwords are typed twice at a hidden prompt, or read from the first line of standard
input with ``--password-stdin`` (for scripts: ``printf '%s\\n' "$PW" | ... --password-stdin``),
never given as an argument where ``ps`` and shell history would show them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from geo.errors import InputError, MinewatchError
from layers.review_store import DATABASE_URL_ENV, ROLES, ReviewStore, database_path, open_store


def run_users_cli(argv: Sequence[str], results_dir_default: Path | None) -> int:
    """Run ``users`` with ``argv`` (the words after it); return the exit status (2 on bad input)."""
    try:
        args = _parser(results_dir_default).parse_args(list(argv))
    except SystemExit as done:  # --help (0) or a usage error (2), already printed by argparse
        return int(done.code or 0)
    try:
        password = _password(args) if args.command in ("add", "passwd") else None
        with open_store(args.results, args.database_url) as store:
            print(COMMANDS[args.command](store, args, password))
    except MinewatchError as error:
        print(f"minewatch: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EOFError):
        print("minewatch: users: cancelled; nothing changed", file=sys.stderr)
        return 2
    return 0


def _parser(results_dir_default: Path | None) -> argparse.ArgumentParser:
    shown = database_path(results_dir_default) if results_dir_default else "none"
    parser = argparse.ArgumentParser(
        prog="python app.py users",
        description="Manage team accounts (roles: team members review and plan; admins also manage users).",
        epilog=f"The database is --database-url, else ${DATABASE_URL_ENV}, else <results>.reviews.sqlite "
        f"beside the results folder (now {shown}).",
    )
    parser.add_argument("--results", type=Path, default=results_dir_default, metavar="DIR", help="results folder")
    parser.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = commands.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    commands.add_parser("list", help="list accounts")
    remove = commands.add_parser("remove", help="delete an account (its reviews keep its name)")
    remove.add_argument("username")
    passwd = commands.add_parser("passwd", help="set a new password")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    role = commands.add_parser("role", help="change an account's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    return parser


def _password(args: argparse.Namespace) -> str:
    """The new password: the first line of stdin, or typed twice at a hidden prompt."""
    if args.password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    first = getpass.getpass(f"New password for {args.username}: ")
    if getpass.getpass("Repeat it: ") != first:
        raise InputError("password: the two entries differ; nothing changed")
    return first


def _add(store: ReviewStore, args: argparse.Namespace, password: str | None) -> str:
    user = store.add_user(args.username, password, args.role)
    return f"added {user.username} ({user.role})"


def _list(store: ReviewStore, args: argparse.Namespace, password: str | None) -> str:
    rows = [
        f"{u.username:<32}  {u.role:<5}  {'active' if u.active else 'suspended':<9}  {u.created_at:%Y-%m-%d}"
        for u in store.list_users()
    ]
    header = f"{'username':<32}  {'role':<5}  {'state':<9}  created"
    return (
        "\n".join([header, *rows])
        if rows
        else "no accounts yet; add one with: python app.py users add NAME --role admin"
    )


def _remove(store: ReviewStore, args: argparse.Namespace, password: str | None) -> str:
    store.remove_user(args.username)
    return f"removed {args.username.strip().lower()}"


def _passwd(store: ReviewStore, args: argparse.Namespace, password: str | None) -> str:
    store.set_password(args.username, password)
    return f"password changed for {args.username.strip().lower()}"


def _role(store: ReviewStore, args: argparse.Namespace, password: str | None) -> str:
    store.set_role(args.username, args.role)
    return f"{args.username.strip().lower()} is now {args.role}"


Command = Callable[[ReviewStore, argparse.Namespace, str | None], str]
COMMANDS: dict[str, Command] = {"add": _add, "list": _list, "remove": _remove, "passwd": _passwd, "role": _role}
