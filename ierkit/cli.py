"""The ``ierkit`` command line.

Each command has an ``_add_<name>`` function that declares its arguments and a ``_run_<name>``
function that does the work. User mistakes raise ``IerkitError`` and print one line; exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ierkit.errors import IerkitError

Runner = Callable[[argparse.Namespace], int]


def parse_date(text: str) -> dt.date:
    """An ISO date (YYYY-MM-DD) from the command line."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD") from None


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default="demo",
        help="'demo' (default), 'salesforce' (credentials from the environment) or a folder",
    )


# --- commands ---------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> Runner:
    parser = sub.add_parser(
        "demo",
        help="generate the synthetic demo org and its tracking extract",
        description="Generate a deterministic synthetic org (Parquet tables, ground truth and a "
        "Marketing Cloud tracking extract zip) and print a summary of it.",
    )
    parser.add_argument("--out", required=True, help="folder to write the demo org into")
    parser.add_argument("--scale", type=float, default=1.0, help="size multiplier (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: built in)")
    parser.add_argument(
        "--as-of", type=parse_date, default=None, help="the demo's today (default: built in)"
    )

    def run(args: argparse.Namespace) -> int:
        from ierkit import demo

        options = {"scale": args.scale}
        if args.seed is not None:
            options["seed"] = args.seed
        if args.as_of is not None:
            options["as_of"] = args.as_of
        summary = demo.generate(args.out, **options)
        print(summary)
        return 0

    return run


def _add_storage(sub: argparse._SubParsersAction) -> Runner:
    parser = sub.add_parser(
        "storage",
        help="records and data storage that tracked sends write",
        description="How many Individual Email Results and link details a tracked send writes, "
        "and how much Salesforce data storage they take (2 KB a record; 1 MB = 1,024 KB).",
    )
    parser.add_argument("--recipients", type=int, required=True, help="recipients per send")
    parser.add_argument(
        "--links-per-recipient",
        type=float,
        default=0.0,
        help="link details per recipient: unique links clicked / recipients (default 0)",
    )
    parser.add_argument(
        "--sends-per-month", type=float, default=None, help="cadence, for monthly and yearly totals"
    )
    parser.add_argument(
        "--record-kb", type=float, default=None, help="storage per record in KB (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    def run(args: argparse.Namespace) -> int:
        from ierkit import storage

        print(
            storage.send_storage_text(
                args.recipients,
                links_per_recipient=args.links_per_recipient,
                sends_per_month=args.sends_per_month,
                record_kb=storage.RECORD_KB if args.record_kb is None else args.record_kb,
                as_json=args.json,
            )
        )
        return 0

    return run


def default_as_of(source: str) -> dt.date:
    """The report date when none is given: the demo's own date for the demo, else today (UTC)."""
    if source == "demo":
        from ierkit import demo

        return demo.DEMO_AS_OF
    return dt.datetime.now(dt.UTC).date()


def _add_weekly(sub: argparse._SubParsersAction) -> Runner:
    parser = sub.add_parser(
        "weekly",
        help="run the weekly report notebooks and per-rep worklists into outputs/<ISO week>/",
        description="Run the report notebooks with papermill into OUT/<ISO week>/: executed "
        "notebooks, HTML without code cells, one worklist per owner (CSV and HTML) and one "
        "email per owner (.eml files, or sent over SMTP with --email).",
    )
    _add_source(parser)
    parser.add_argument(
        "--as-of", type=parse_date, default=None,
        help="report date (default: the demo's date for the demo, else today)",
    )  # fmt: skip
    parser.add_argument("--out", default="outputs", help="folder of week folders (default outputs)")
    parser.add_argument("--window-days", type=int, default=7, help="worklist window (default 7)")
    parser.add_argument(
        "--email", action="store_true",
        help="send each owner their worklist over SMTP (IERKIT_SMTP_* environment variables)",
    )  # fmt: skip
    parser.add_argument(
        "--cell-timeout", type=int, default=900, help="seconds a notebook cell may run (900)"
    )

    def run(args: argparse.Namespace) -> int:
        from ierkit import weekly

        as_of = args.as_of or default_as_of(args.source)
        result = weekly.run_weekly(
            source=args.source,
            as_of=as_of,
            out_root=Path(args.out),
            window_days=args.window_days,
            email=args.email,
            execution_timeout=args.cell_timeout,
            progress=lambda line: print(line, flush=True),
        )
        print(f"reports in {result.folder}")
        return 0

    return run


def _add_aggregate(sub: argparse._SubParsersAction) -> Runner:
    parser = sub.add_parser(
        "aggregate",
        help="roll Marketing Cloud tracking extracts up into IERs and link details",
        description="Read tracking extracts (zips, folders or files; data-view exports too), "
        "merge their events into the event store (deduplicated: applying an extract twice or "
        "overlapping windows never double counts), recompute the sends they touched and write "
        "individual_email_results.parquet and individual_links.parquet into OUT.",
    )
    parser.add_argument("extracts", nargs="+", metavar="EXTRACT", help="extract zip or folder")
    parser.add_argument("--out", required=True, help="output folder (a local org)")
    parser.add_argument(
        "--store", default=None, help="event store folder (default OUT/event_store)"
    )
    parser.add_argument(
        "--source-zone", default=None,
        help="IANA time zone of the extract's dates (default Marketing Cloud's UTC-6, no DST)",
    )  # fmt: skip

    def run(args: argparse.Namespace) -> int:
        from ierkit import aggregate, extract

        landed, written = aggregate.aggregate_extracts(
            args.extracts,
            args.out,
            store=args.store,
            source_zone=args.source_zone or extract.MC_SOURCE_ZONE,
        )
        print(
            f"read {landed.events_read:,} events from {landed.files} files; "
            f"{len(landed.job_ids):,} sends updated ({landed.events_in_store:,} distinct events)"
        )
        print(
            f"wrote {written.iers:,} individual email results "
            f"({written.without_sent_row:,} without a Sent row) and "
            f"{written.links:,} link details to {args.out}"
        )
        return 0

    return run


COMMANDS: list[Callable[[argparse._SubParsersAction], Runner]] = [
    _add_demo,
    _add_storage,
    _add_weekly,
    _add_aggregate,
]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    """The argument parser and the runner of each command."""
    parser = argparse.ArgumentParser(
        prog="ierkit",
        description="Individual Email Results toolkit for Marketing Cloud Connect.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    runners: dict[str, Runner] = {}
    for add in COMMANDS:
        before = set(sub.choices)
        runner = add(sub)
        for name in set(sub.choices) - before:
            runners[name] = runner
    return parser, runners


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser, runners = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return runners[args.command](args)
    except IerkitError as error:
        print(f"ierkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ierkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
