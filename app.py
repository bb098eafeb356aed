"""minewatch command line: analyse licences, production and activity; serve the map.

    python app.py                      # the dashboard on the bundled demo
    python app.py analyze --concessions C --production P --activity A [--national N] --out DIR
    python app.py serve --results DIR  # the dashboard on a saved analysis
    python app.py plan-visits --flags DIR/flags.geojson --start LON,LAT --out PLAN_DIR
    python app.py build-activity --scenes SENTINEL2_DIR --out ACTIVITY_DIR
    gunicorn -w 2 app:server           # production (MINEWATCH_RESULTS=DIR, see README)

Run ``python app.py COMMAND --help`` for every option. Bad input ends with one line on
standard error naming the file, the row or feature and the problem, exit status 2, and
nothing written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from geo.errors import MinewatchError
from geo.flags import FLAG_TYPES
from layers.progress import ConsoleProgress
from layers.versions import software_versions

DEMO_DIR = Path(__file__).resolve().parent / "data" / "demo"
EXIT_BAD_INPUT = 2
EXIT_BUG = 1  # an unexpected error: a bug to report, not the input's fault
VERSIONED_PACKAGES = ("numpy", "pandas", "geopandas", "shapely", "pyproj", "rasterio", "pyogrio", "scipy", "pystac")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="minewatch: where licensed concessions, reported production and satellite-seen "
        "activity disagree. Without a command, serves the dashboard on the bundled demo.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'python app.py COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    analyze = commands.add_parser(
        "analyze",
        help="compute every discrepancy flag and write the outputs to a folder",
        description="Load licences, production and activity rasters, compute every flag of the design, and "
        "write flags.geojson, flags.csv, concession_stats.csv, footprints.geojson and provenance.json "
        "into --out (all or nothing).",
        epilog="Example (the bundled demo):\n  python app.py analyze --concessions data/demo/concessions.gpkg "
        "--production data/demo/production.csv --national data/demo/national.csv "
        "--activity data/demo/activity --out results/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(analyze, required=True)
    analyze.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced atomically)")
    analyze.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    analyze.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="scan the rasters on this Dask cluster, e.g. tcp://host:8786 (default: env MINEWATCH_SCHEDULER, "
        "else this machine); workers need minewatch and the files at the same paths",
    )
    plan = commands.add_parser(
        "plan-visits",
        help="order flagged sites into a day-by-day itinerary; write GPX, GeoJSON, CSV and a printable briefing",
        description="Choose flagged sites (the best-scoring ones passing the filters, or --flag ids), order them "
        "from a base to keep driving short, split them into days, and write itinerary.gpx, itinerary.geojson, "
        "itinerary.csv, briefing.html and briefing.pdf (when Chromium is installed) into --out.",
        epilog="Example:\n  python app.py plan-visits --flags results/demo/flags.geojson --start Mutare "
        "--max-sites 5 --days 2 --out plans/marange",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument(
        "--flags", required=True, metavar="FILE", help="flags.geojson of an analysis (its folder gives maps and charts)"
    )
    plan.add_argument(
        "--start",
        required=True,
        metavar="LON,LAT|PLACE",
        help="the base: LON,LAT or a place of the analysis (e.g. Mutare)",
    )
    plan.add_argument(
        "--flag",
        action="append",
        default=[],
        metavar="FLAG_ID",
        help="visit this flag (repeatable); default: the best-scoring",
    )
    plan.add_argument(
        "--max-sites",
        type=int,
        default=10,
        metavar="N",
        help="at most N sites (default 10); flags within 250 m share one site",
    )
    plan.add_argument("--min-score", type=float, default=0.0, help="only flags scoring at least this (0..1)")
    plan.add_argument(
        "--type",
        action="append",
        default=[],
        dest="types",
        metavar="FLAG_TYPE",
        help="only these flag types (repeatable)",
    )
    plan.add_argument("--period", help="only flags of this period")
    plan.add_argument("--days", type=int, default=2, help="days available (default 2)")
    budget = plan.add_mutually_exclusive_group()
    budget.add_argument(
        "--hours-per-day", type=float, default=10.0, help="daily budget in hours, driving and visits (default 10)"
    )
    budget.add_argument("--km-per-day", type=float, help="daily budget in road kilometres (instead of hours)")
    plan.add_argument("--detour", type=float, default=1.4, help="road km per great-circle km (default 1.4)")
    plan.add_argument("--speed-kmh", type=float, default=40.0, help="average driving speed (default 40)")
    plan.add_argument("--visit-hours", type=float, default=1.0, help="time at each stop (default 1)")
    plan.add_argument("--no-return", action="store_true", help="sleep near the last stop instead of back at base")
    plan.add_argument("--no-pdf", action="store_true", help="skip the PDF even when Chromium is installed")
    plan.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    plan.add_argument("--out", required=True, metavar="DIR", help="plan folder (replaced atomically)")
    plan.add_argument(
        "--limit", action="append", default=[], metavar="NAME=VALUE", help="raise an input size limit (see analyze)"
    )
    build = commands.add_parser(
        "build-activity",
        help="build activity rasters (one COG per period, and a STAC catalog) from Sentinel-2 L2A scenes",
        description="Cloud-masked composites per period, spectral indices and a 0..1 disturbance score against "
        "a baseline period, written as Cloud-Optimized GeoTIFFs plus a STAC catalog that 'analyze --activity' "
        "reads. Runs in-process, or on a Dask cluster with --scheduler or MINEWATCH_SCHEDULER.",
        epilog="Example (the bundled synthetic scenes):\n  python app.py build-activity --scenes data/demo_scenes "
        "--out results/demo_activity",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from layers.activity_build import add_arguments as add_build_arguments

    add_build_arguments(build)
    users = commands.add_parser(
        "users",
        help="manage team accounts: add, list, remove, passwd, role (run 'python app.py users --help')",
        add_help=False,
    )
    users.add_argument("rest", nargs=argparse.REMAINDER)
    serve = commands.add_parser(
        "serve",
        help="serve the dashboard (the bundled demo, a saved analysis, or your inputs analysed first)",
        description="Serve the dashboard. With --results, open a saved analysis; with the input options, "
        "analyse them first (into --out, default results/latest); with neither, the bundled demo.",
        epilog="Examples:\n  python app.py serve --results results/demo\n"
        "  python app.py serve --concessions c.gpkg --production p.csv --activity act/ --out results/mine",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--results", metavar="DIR", help="a folder written by 'analyze'")
    add_input_options(serve, required=False)
    serve.add_argument("--out", metavar="DIR", default="results/latest", help="where to write a fresh analysis")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    serve.add_argument(
        "--basemap-url",
        default=os.environ.get("MINEWATCH_BASEMAP_URL"),
        metavar="URL",
        help="optional XYZ tiles for online users, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png "
        "(default: none, fully offline; env MINEWATCH_BASEMAP_URL)",
    )
    serve.add_argument(
        "--sensitive-type",
        action="append",
        default=None,
        metavar="FLAG_TYPE",
        help="flag type whose places the public see only displaced 0.5-2 km (repeatable; "
        "env MINEWATCH_SENSITIVE_FLAG_TYPES; see README, 'Sensitive findings')",
    )
    serve.add_argument("--quiet", action="store_true", help="print only errors")
    return parser


def add_input_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The input options shared by ``analyze`` and ``serve``."""
    parser.add_argument(
        "--concessions",
        required=required,
        metavar="FILE",
        help="licence polygons: GeoPackage, GeoJSON, Shapefile or .zip, GeoParquet, FlatGeobuf (CRS required)",
    )
    parser.add_argument(
        "--production", required=required, metavar="FILE", help="CSV or Excel: concession_id, period, carats"
    )
    parser.add_argument(
        "--activity",
        required=required,
        metavar="PATH",
        help="folder of GeoTIFFs named by period (2021.tif, 2021-Q3.tif) or a STAC catalog.json",
    )
    parser.add_argument("--national", metavar="FILE", help="CSV or Excel: country, period, carats (optional)")
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="FILE",
        help="places or boundaries to show on the map for orientation (any vector file with a name field; repeatable)",
    )
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="CANONICAL=THEIRS",
        help="map a column, e.g. --field holder=HOLDER_NM or --field production:carats=CT (repeatable)",
    )
    parser.add_argument("--config", metavar="TOML", help="settings file (see README, 'Settings')")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one setting, e.g. --set activity_threshold=0.6 (repeatable)",
    )
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="raise or lower one input size limit, e.g. --limit max_feature_vertices=1000000 (repeatable; "
        "see README, 'Input limits')",
    )


def analyze_inputs(args: argparse.Namespace, progress: ConsoleProgress):
    """Load the inputs named in ``args``, run the analysis, and attach provenance."""
    from geo.analysis import run_analysis
    from geo.settings import load_settings
    from layers.activity import find_activity_rasters
    from layers.concessions import read_concessions
    from layers.context import combine_context, read_context
    from layers.dask_client import executor_for
    from layers.fields import parse_field_mappings
    from layers.limits import load_limits
    from layers.paths import local_path, sha256_of
    from layers.tables import read_national, read_production

    config_text = local_path(args.config, layer="settings").read_text(encoding="utf-8") if args.config else None
    settings = load_settings(config_text, args.set)
    limits = load_limits(config_text, args.limit)
    mappings = parse_field_mappings(args.field)
    progress.step(f"reading concessions {args.concessions}")
    concessions = read_concessions(args.concessions, mappings, limits)
    progress.step(f"reading production {args.production}")
    production = read_production(args.production, mappings, limits)
    national = read_national(args.national, mappings, limits) if args.national else None
    rasters = find_activity_rasters(args.activity, limits)
    progress.step(
        f"{len(concessions.table)} concessions, {len(production.table)} production rows, "
        f"{len(rasters)} activity rasters ({rasters[0].period}..{rasters[-1].period})"
    )
    for note in concessions.notes[:20]:
        progress.step(f"note: {note}")
    if len(concessions.notes) > 20:
        progress.step(f"note: ... and {len(concessions.notes) - 20} more repairs")
    with executor_for(getattr(args, "scheduler", None), progress.step, command="analyze") as executor:
        analysis = run_analysis(
            concessions.table,
            production.table,
            national.table if national else None,
            rasters,
            settings,
            progress,
            executor=executor,
        )
    inputs = [("concessions", args.concessions), ("production", args.production)]
    inputs += [("national", args.national)] if args.national else []
    if Path(args.activity).is_file():
        inputs.append(("activity catalog", args.activity))
    inputs += [(f"activity {r.period}", str(r.path)) for r in rasters]
    inputs += [("context", path) for path in args.context]
    synthetic = concessions.synthetic or production.synthetic or any(r.synthetic for r in rasters)
    analysis.notes = concessions.notes
    analysis.context = combine_context([read_context(path, limits) for path in args.context])
    analysis.provenance = {
        "minewatch": "analysis",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "synthetic": synthetic,
        "synthetic_note": "Some inputs declare themselves synthetic: no finding is a real allegation."
        if synthetic
        else None,
        "inputs": [
            {
                "layer": layer,
                "path": str(Path(path).absolute()),
                "bytes": Path(path).stat().st_size,
                "sha256": sha256_of(Path(path)),
            }
            for layer, path in inputs
        ],
        "national_synthetic": bool(national.synthetic) if national else None,
        "settings": settings.to_dict(),
        "input_limits": limits.to_dict(),
        "field_mappings": args.field,
        "periods": [r.period.label for r in rasters],
        "area_crs": analysis.provenance.get("area_crs"),
        "software": software_versions(VERSIONED_PACKAGES),
        "notes": concessions.notes,
    }
    return analysis


def run_analyze(args: argparse.Namespace) -> int:
    """``analyze``: compute and write; print a summary of the flags."""
    from layers.atomic import folder_lock
    from layers.results import write_analysis

    progress = ConsoleProgress(quiet=args.quiet)
    with folder_lock(args.out):
        analysis = analyze_inputs(args, progress)
        progress.step(f"writing {args.out}")
        out = write_analysis(analysis, args.out)
    counts = analysis.flags["flag_type"].value_counts()
    print(f"{len(analysis.flags)} flags written to {out}" + (" (SYNTHETIC demo data)" if analysis.synthetic else ""))
    for flag_type in FLAG_TYPES:
        print(f"  {flag_type:32s} {int(counts.get(flag_type, 0)):5d}")
    return 0


def run_plan_visits(args: argparse.Namespace) -> int:
    """``plan-visits``: select, order, split into days, and write the plan's files."""
    from dashboard.briefing import briefing_html
    from geo.visits import TripSettings, parse_base, plan_visits, select_flags, stops_from_flags
    from layers.limits import load_limits
    from layers.paths import local_path
    from layers.plan_files import write_plan
    from layers.results import MARKER, read_analysis
    from layers.vectors import read_vector

    progress = ConsoleProgress(quiet=args.quiet)
    flags_path = local_path(args.flags, layer="flags")
    progress.step(f"reading {flags_path}")
    analysis = read_analysis(flags_path.parent) if (flags_path.parent / MARKER).is_file() else None
    flags = analysis.flags if analysis is not None else read_vector(flags_path, "flags", load_limits(None, args.limit))
    flags = with_review_status(flags, flags_path.parent) if analysis is not None else flags
    chosen = select_flags(flags, flag_ids=args.flag, min_score=args.min_score, flag_types=args.types,
                          period=args.period)  # fmt: skip
    if chosen.empty:
        raise MinewatchError(f"flags: {flags_path}: no flag with a location matches the selection")
    try:
        base_name, base_lon, base_lat = parse_base(args.start, analysis.context if analysis is not None else None)
    except ValueError as exc:
        raise MinewatchError(f"--start: {exc}") from None
    settings = TripSettings(
        detour_factor=args.detour, speed_kmh=args.speed_kmh, visit_hours=args.visit_hours, days=args.days,
        km_per_day=args.km_per_day, hours_per_day=None if args.km_per_day else args.hours_per_day,
        return_to_base=not args.no_return,
    )  # fmt: skip
    stops = stops_from_flags(chosen)[: args.max_sites]  # the best-scoring places; nearby flags share a stop
    progress.step(f"ordering {len(stops)} sites from {base_name}")
    plan = plan_visits(stops, base_name, base_lon, base_lat, settings)
    written = write_plan(plan, briefing_html(plan, analysis), args.out, pdf=not args.no_pdf, say=progress.step)
    print(
        f"{len(plan.stops)} stops over {len(plan.days)} day(s) from {base_name}; "
        f"{sum(plan.day_km):,.0f} km by road" + (f"; {len(plan.unplanned)} not planned" if plan.unplanned else "")
    )
    for path in written:
        print(f"  {path}")
    return 0


def with_review_status(flags, results_dir: Path):
    """``flags`` plus ``review_status`` from the review database beside the results, if there is one."""
    from layers.review_store import database_path, open_store

    if not database_path(results_dir).exists() and not os.environ.get("MINEWATCH_DATABASE_URL"):
        return flags
    with open_store(results_dir) as store:
        reviews = store.current()
    flags = flags.copy()
    flags["review_status"] = [reviews[f].status if f in reviews else "new" for f in flags["flag_id"]]
    return flags


def demo_args(out: str = "results/demo") -> argparse.Namespace:
    """The ``analyze`` arguments for the bundled demo."""
    inputs = {
        "--concessions": DEMO_DIR / "concessions.gpkg",
        "--production": DEMO_DIR / "production.csv",
        "--national": DEMO_DIR / "national.csv",
        "--activity": DEMO_DIR / "activity",
        "--context": DEMO_DIR / "context.geojson",
    }
    return build_parser().parse_args(["analyze", *[str(x) for pair in inputs.items() for x in pair], "--out", out])


def demo_results(progress: ConsoleProgress, out: str = "results/demo") -> Path:
    """The demo's analysis folder, (re)computed when missing or older than the demo files."""
    from layers.paths import sha256_of
    from layers.results import write_analysis

    folder = Path(out)
    provenance = folder / "provenance.json"
    if provenance.is_file():
        recorded = {e["path"]: e["sha256"] for e in json.loads(provenance.read_text()).get("inputs", [])}
        current = demo_input_files()
        if set(recorded) == {str(p) for p in current} and all(recorded[str(p)] == sha256_of(p) for p in current):
            progress.step(f"using the demo analysis in {folder}")
            return folder
    progress.step(f"analysing the bundled demo into {folder} (once)")
    return write_analysis(analyze_inputs(demo_args(out), progress), folder)


def demo_input_files() -> list[Path]:
    """The demo's input files, as provenance.json records them."""
    files = [DEMO_DIR / "concessions.gpkg", DEMO_DIR / "production.csv", DEMO_DIR / "national.csv"]
    activity = sorted((DEMO_DIR / "activity").glob("*.tif"))
    return [p.absolute() for p in [*files, *activity, DEMO_DIR / "context.geojson"]]


def run_serve(args: argparse.Namespace) -> int:
    """``serve``: open a saved analysis, or analyse first, then serve until interrupted."""
    from dashboard import create_app
    from layers.results import read_analysis, write_analysis

    progress = ConsoleProgress(quiet=args.quiet)
    given = [args.concessions, args.production, args.activity]
    if args.results:
        folder = Path(args.results)
    elif any(given):
        if not all(given):
            raise MinewatchError("serve: give --concessions, --production and --activity together (or --results)")
        folder = write_analysis(analyze_inputs(args, progress), args.out)
    else:
        folder = demo_results(progress)
    analysis = read_analysis(folder)
    app = create_app(analysis, basemap_url=args.basemap_url, title=f"minewatch: {folder.name}", results_dir=folder,
                     sensitive_types=args.sensitive_type)  # fmt: skip
    if not (args.results or any(given)):
        ensure_demo_account(folder, progress)
    progress.step(f"dashboard on http://{args.host}:{args.port}/ (Ctrl+C to stop)")
    app.run(host=args.host, port=args.port, debug=False, dev_tools_ui=False, dev_tools_props_check=False)
    return 0


DEMO_TEAM_USER = "demo-team"
DEMO_TEAM_PASSWORD = "marange-demo-2024"  # documented in the README; the demo's data are synthetic


def ensure_demo_account(folder: Path, progress: ConsoleProgress) -> None:
    """The demo's documented team account (created once, beside the demo's results)."""
    from layers.review_store import open_store

    with open_store(folder) as store:
        if store.get_user(DEMO_TEAM_USER) is None:
            store.add_user(DEMO_TEAM_USER, DEMO_TEAM_PASSWORD, "team")
            progress.step(f"demo team account: {DEMO_TEAM_USER} / {DEMO_TEAM_PASSWORD}")


class LazyServer:
    """WSGI entry point for gunicorn (``app:server``), built on its first request.

    Serves ``MINEWATCH_RESULTS`` (a folder written by ``analyze``), or the demo. Each
    worker loads the analysis once and only reads it afterwards.
    """

    def __init__(self):
        self._wsgi = None

    def load(self):
        """Load the analysis now (gunicorn.conf.py calls this as each worker starts)."""
        if self._wsgi is None:
            from dashboard import create_app
            from layers.results import read_analysis

            folder = Path(os.environ.get("MINEWATCH_RESULTS") or demo_results(ConsoleProgress(quiet=True)))
            app = create_app(
                read_analysis(folder), basemap_url=os.environ.get("MINEWATCH_BASEMAP_URL"), results_dir=folder
            )
            self._wsgi = app.server
        return self._wsgi

    def __call__(self, environ, start_response):
        return self.load()(environ, start_response)


server = LazyServer()


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv`` and run the command; bad input exits with status 2."""
    from layers.network import apply_offline_policy

    apply_offline_policy()  # first: GDAL makes no network request unless a STAC API URL is read
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["users"]:  # its own parser: argparse cannot hand "--options" on to it
        from layers.users_cli import run_users_cli

        return run_users_cli(argv[1:], Path("results/demo"))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "analyze":
            return run_analyze(args)
        if args.command == "plan-visits":
            return run_plan_visits(args)
        if args.command == "build-activity":
            from layers.activity_build import run as run_build_activity

            return run_build_activity(args)
        if args.command is None:
            args = parser.parse_args(["serve"])
        return run_serve(args)
    except MinewatchError as error:
        print(f"minewatch: error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("minewatch: interrupted; previous outputs are untouched", file=sys.stderr)
        return 130
    except Exception as error:  # a bug, not bad input: one line here, the traceback in a file
        if os.environ.get("MINEWATCH_DEBUG"):
            raise
        report = save_traceback(error)
        print(f"minewatch: internal error: {type(error).__name__}: {' '.join(str(error).split())[:300]}; this is "
              f"a bug in minewatch (previous outputs are untouched); the traceback is in {report}", file=sys.stderr)  # fmt: skip
        return EXIT_BUG


def save_traceback(error: Exception) -> Path:
    """Write ``error``'s traceback to a private temporary file and return its path."""
    import tempfile
    import traceback

    handle, name = tempfile.mkstemp(prefix="minewatch-crash-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write("".join(traceback.format_exception(error)))
    return Path(name)


if __name__ == "__main__":
    sys.exit(main())
