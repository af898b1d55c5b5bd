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
from typing import NoReturn, TypeAlias

import polars as pl

from ierkit._cli_args import (
    non_negative_float,
    non_negative_int,
    parse_date,
    positive_float,
    positive_int,
    time_zone_name,
)
from ierkit.errors import IerkitError
from ierkit.orgs import default_as_of

Runner = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default="demo",
        help="'demo' (default), 'salesforce' (credentials from the environment) or a folder",
    )


# --- commands ---------------------------------------------------------------------------------


def _add_demo(sub: Subparsers) -> Runner:
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
    parser.add_argument(
        "--extract-encoding",
        choices=("utf-8", "utf-16"),
        default="utf-8",
        help="encoding of the extract's files: utf-8 (default) or utf-16 (the Unicode option)",
    )
    parser.add_argument(
        "--extract-delimiter",
        choices=(",", "\t", "\\t", "tab", "|", ";"),
        default=",",
        help="separator of the extract's files (default ','; tab, '|' and ';' as exported)",
    )

    def run(args: argparse.Namespace) -> int:
        from ierkit import demo

        options = {"scale": args.scale}
        if args.seed is not None:
            options["seed"] = args.seed
        if args.as_of is not None:
            options["as_of"] = args.as_of
        delimiter = "\t" if args.extract_delimiter in ("\\t", "tab") else args.extract_delimiter
        summary = demo.generate(
            args.out,
            extract_format=demo.ExtractFormat(args.extract_encoding, delimiter),
            **options,
        )
        print(summary)
        return 0

    return run


def _add_storage(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "storage",
        help="records and data storage that tracked sends write",
        description="How many Individual Email Results and link details a tracked send writes, "
        "and how much Salesforce data storage they take (2 KB a record; 1 MB = 1,024 KB).",
    )
    parser.add_argument(
        "--recipients", type=positive_int, required=True, help="recipients per send"
    )
    parser.add_argument(
        "--links-per-recipient",
        type=non_negative_float,
        default=0.0,
        help="link details per recipient: unique links clicked / recipients (default 0)",
    )
    parser.add_argument(
        "--sends-per-month",
        type=positive_float,
        default=None,
        help="cadence, for monthly and yearly totals",
    )
    parser.add_argument(
        "--record-kb",
        type=positive_float,
        default=None,
        help="storage per record in KB (default 2)",
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


def _add_weekly(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "weekly",
        help="run the weekly report notebooks and per-rep worklists into outputs/<ISO week>/",
        description="Run the report notebooks with papermill into OUT/<ISO week>/: executed "
        "notebooks, HTML without code cells, one worklist per owner (CSV and HTML) and one "
        "email per owner (.eml files, or sent over SMTP with --email).",
    )
    _add_source(parser)
    parser.add_argument(
        "--as-of",
        type=parse_date,
        default=None,
        help="report date (default: the demo's date for the demo, else today)",
    )
    parser.add_argument("--out", default="outputs", help="folder of week folders (default outputs)")
    parser.add_argument("--window-days", type=int, default=7, help="worklist window (default 7)")
    parser.add_argument(
        "--extract",
        default=None,
        help="Marketing Cloud tracking extract (zip, folder, or sftp://user@host/folder/*.zip: "
        "its newest file) for the sync-health report (default: the demo's)",
    )
    parser.add_argument(
        "--email",
        action="store_true",
        help="send each owner their worklist over SMTP (IERKIT_SMTP_* environment variables)",
    )
    parser.add_argument(
        "--resend",
        action="store_true",
        help="with --email, send every owner their worklist again, even those the week's "
        "delivery ledger lists as sent (by default a rerun sends only what was not sent)",
    )
    parser.add_argument(
        "--notebook",
        action="append",
        default=None,
        metavar="NAME",
        help="run only this report notebook (repeat for several; default: all four)",
    )
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another run of the same week to finish (default 60)",
    )
    parser.add_argument(
        "--cell-timeout", type=int, default=900, help="seconds a notebook cell may run (900)"
    )
    parser.add_argument(
        "--timezone",
        type=time_zone_name,
        default="UTC",
        help="IANA zone the reports show times in, e.g. America/Chicago (default UTC); each "
        "rep's email uses the rep's own Salesforce time zone",
    )

    def run(args: argparse.Namespace) -> int:
        from ierkit import weekly

        if args.resend and not args.email:
            parser.error("--resend needs --email")
        if not 0 <= args.lock_wait < float("inf"):  # NaN fails the comparison too
            parser.error(f"--lock-wait must be 0 or more seconds, not {args.lock_wait}")
        unknown = sorted(set(args.notebook or ()) - set(weekly.WEEKLY_NOTEBOOKS))
        if unknown:
            parser.error(
                f"--notebook {', '.join(unknown)}: not a report notebook; choose from "
                + ", ".join(weekly.WEEKLY_NOTEBOOKS)
            )
        as_of = args.as_of or default_as_of(args.source)
        result = weekly.run_weekly(
            source=args.source,
            as_of=as_of,
            out_root=Path(args.out),
            notebooks=[n for n in weekly.WEEKLY_NOTEBOOKS if n in (args.notebook or [n])],
            window_days=args.window_days,
            extract=args.extract,
            email=args.email,
            resend=args.resend,
            lock_wait=args.lock_wait,
            execution_timeout=args.cell_timeout,
            timezone=args.timezone,
            progress=lambda line: print(line, flush=True),
        )
        print(f"reports in {result.folder}")
        return 0

    return run


def _add_aggregate(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "aggregate",
        help="roll Marketing Cloud tracking extracts up into IERs and link details",
        description="Read tracking extracts (zips, folders or files; data-view exports too), "
        "merge their events into the event store (deduplicated: applying an extract twice or "
        "overlapping windows never double counts), recompute the sends they touched and write "
        "individual_email_results.parquet and individual_links.parquet into OUT.",
    )
    parser.add_argument(
        "extracts",
        nargs="+",
        metavar="EXTRACT",
        help="extract zip, folder or file, or sftp://user@host[:port]/folder/pattern*.zip "
        "(each new file applied once; key and host key from IERKIT_SFTP_* variables)",
    )
    parser.add_argument("--out", required=True, help="output folder (a local org)")
    parser.add_argument(
        "--store", default=None, help="event store folder (default OUT/event_store)"
    )
    parser.add_argument(
        "--source-zone",
        default=None,
        help="IANA time zone of the extract's dates (default Marketing Cloud's UTC-6, no DST)",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="load the good rows and list bad ones in OUT/rejected_rows.csv (default: a bad row "
        "refuses the whole run and nothing is written)",
    )
    parser.add_argument(
        "--no-signal",
        action="store_true",
        help="do not write OUT/engagement_signal.parquet (per recipient: opens and clicks of a "
        "person and of a machine, with the reasons in words; written by default)",
    )

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 <= value < float("inf"):  # NaN fails too
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
        return value

    parser.add_argument(
        "--lock-wait",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another run using the same store or output folder before "
        "stopping with its pid, host and start time (default 600)",
    )

    def run(args: argparse.Namespace) -> int:
        import contextlib

        from ierkit import aggregate, clock, pickup, signal
        from ierkit import store as event_store

        store = Path(args.store) if args.store else Path(args.out) / "event_store"
        lock_wait = event_store.DEFAULT_LOCK_WAIT if args.lock_wait is None else args.lock_wait
        with contextlib.ExitStack() as stack:
            # The whole pickup runs under the store's lock (taken again, re-entrantly, by
            # aggregate_extracts): two runs never download and apply the same new files.
            stack.enter_context(event_store.locked(store, out=args.out, wait=lock_wait))
            # New SFTP files are downloaded first and recorded as applied only if all succeeds.
            batches = [
                stack.enter_context(pickup.collect(url, pickup.store_state(store, url)))
                for url in args.extracts
                if pickup.is_sftp(url)
            ]
            for batch in batches:
                print(batch.summary())
            paths = [p for p in args.extracts if not pickup.is_sftp(p)]
            paths += [path for batch in batches for path in batch.paths]
            if not paths:
                print("nothing new to apply")
                return 0
            landed, written = aggregate.aggregate_extracts(
                paths,
                args.out,
                store=args.store,
                source_zone=args.source_zone or clock.MC_TIME_ZONE,
                lock_wait=lock_wait,
                skip_bad_rows=args.skip_bad_rows,
                write_signal=not args.no_signal,
            )
        for note in landed.notes:
            print(f"  {note}")
        print(
            f"read {landed.events_read:,} events from {landed.files} files; "
            f"{len(landed.job_ids):,} sends updated ({landed.events_in_store:,} events in store)"
        )
        if args.skip_bad_rows:
            print(
                f"skipped {landed.rejected:,} bad rows, listed in "
                f"{Path(args.out) / aggregate.REJECTED_FILE}"
            )
        print(
            f"wrote {written.iers:,} individual email results "
            f"({written.without_sent_row:,} without a Sent row) and "
            f"{written.links:,} link details to {args.out}"
        )
        if not args.no_signal:
            print(signal.describe_written(args.out))
        return 0

    return run


def _refuse_cached_demo(source: str, command: str) -> None:
    """The cached demo is shared by every notebook and test: never change it in place."""
    if source.split("+archive:", 1)[0] == "demo":
        raise IerkitError(
            f"{command} changes the org, and --source demo is the shared cached demo: copy it "
            "first (ierkit demo --out DIR) and pass --source DIR"
        )


def _add_cleanup(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "cleanup",
        help="archive and delete IERs older than a retention window (dry run by default)",
        description="Select IERs sent before as-of minus the retention window, with their link "
        "details and link details already orphaned; archive them to Parquet, verify the archive "
        "and delete them, children first. Without --execute, only the plan is printed and "
        "nothing is written. A run killed part-way resumes when started again with its --run-id.",
    )
    _add_source(parser)
    parser.add_argument(
        "--retention-days",
        type=non_negative_int,
        required=True,
        help="keep IERs sent in the last N days",
    )
    parser.add_argument(
        "--archive",
        required=True,
        help="archive folder or fsspec URL (s3://...), or 'bigobject': the Salesforce org's own "
        "big objects (deploy them first: ierkit metadata --out DIR)",
    )
    parser.add_argument("--execute", action="store_true", help="archive and delete (not a dry run)")
    parser.add_argument(
        "--hard-delete", action="store_true", help="skip the Recycle Bin (Salesforce hardDelete)"
    )
    parser.add_argument("--run-id", default=None, help="resume this run, or name a new one")
    parser.add_argument(
        "--as-of",
        type=parse_date,
        default=None,
        help="the retention window ends on this day (default: today; the demo's date for demo)",
    )
    parser.add_argument(
        "--programme", action="append", default=None, help="only this programme (repeatable)"
    )
    parser.add_argument(
        "--send",
        action="append",
        default=None,
        help="only this Email/Triggered Send Id (repeatable)",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=None,
        help="Ids per delete request (default: the org's batch, 10,000 for Salesforce)",
    )
    parser.add_argument(
        "--require-writeback",
        action="store_true",
        help="refuse while a person's IERs are newer than their written summary",
    )

    def run(args: argparse.Namespace) -> int:
        from ierkit import cleanup
        from ierkit.orgs import open_org

        if args.execute:
            _refuse_cached_demo(args.source, "ierkit cleanup --execute")
        criteria = cleanup.cleanup_criteria(
            args.retention_days,
            as_of=args.as_of or default_as_of(args.source),
            programmes=args.programme,
            sends=args.send,
        )
        result = cleanup.run_cleanup(
            open_org(args.source),
            archive=args.archive,
            criteria=criteria,
            run_id=args.run_id,
            execute=args.execute,
            hard_delete=args.hard_delete,
            chunk_size=args.chunk_size,
            require_writeback=args.require_writeback,
        )
        print(result)
        return 1 if result.failures is not None and result.failures.height else 0

    return run


def _add_writeback(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "writeback",
        help="write the engagement summary onto Contacts and Leads (dry run by default)",
        description="Write each person's engagement summary onto their Contact or Lead where "
        "it changed. Without --execute, only says what would change. A killed run resumes "
        "when started again with its --run-id.",
    )
    _add_source(parser)
    parser.add_argument("--as-of", default=None, help="summary instant or day (default: source's)")
    parser.add_argument("--execute", action="store_true", help="write (not a dry run)")
    parser.add_argument("--tasks", action="store_true", help="also one Task per click day")
    parser.add_argument("--run-id", default=None, help="resume this run, or name a new one")
    parser.add_argument("--ledger-dir", default=None, help="run folders (default: the cache)")

    def run(args: argparse.Namespace) -> int:
        from ierkit import clock, writeback
        from ierkit.orgs import open_org

        if args.execute:
            _refuse_cached_demo(args.source, "ierkit writeback --execute")
        result = writeback.run_writeback(
            open_org(args.source),
            as_of=clock.parse_as_of(args.as_of, name="--as-of"),
            tasks=args.tasks,
            execute=args.execute,
            run_id=args.run_id,
            ledger_dir=args.ledger_dir,
        )
        print(result)
        if result.folder is not None:  # an executed run
            print(f"Ledger: {result.folder} (to resume: --run-id {result.run_id})")
        return 1 if result.failures.height else 0

    return run


def _add_restore(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "restore",
        help="put archived IERs and link details back into a local org",
        description="Re-create the IERs and link details of a cleanup archive in a local org "
        "(records already there are left alone). Salesforce orgs are not supported: restored "
        "IERs would be new records whose Email Send and Contact or Lead must still exist.",
    )
    _add_source(parser)
    parser.add_argument(
        "--archive",
        required=True,
        help="archive folder or fsspec URL, or 'bigobject': the big objects of the Salesforce "
        "org the environment logs into",
    )
    parser.add_argument("--run-id", default=None, help="only this run's records (default: all)")

    def run(args: argparse.Namespace) -> int:
        from ierkit import cleanup
        from ierkit.orgs import open_org

        _refuse_cached_demo(args.source, "ierkit restore")
        if cleanup.is_bigobject(args.archive):
            big = cleanup.bigobject_archive(open_org("salesforce"))
            counts = cleanup.restore_bigobject(open_org(args.source), big, run_id=args.run_id)
        else:
            counts = cleanup.restore_archive(
                open_org(args.source), args.archive, run_id=args.run_id
            )
        for row in counts.iter_rows(named=True):  # one row per table
            print(
                f"{row['table']}: {row['restored']:,} restored, {row['already_present']:,} "
                f"already present (of {row['archived']:,} archived)"
            )
        return 0

    return run


def _add_metadata(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "metadata",
        help="write the Salesforce metadata ierkit needs as an sfdx project to deploy",
        description="Write an sfdx project (sfdx-project.json, force-app/main/default/...) with "
        "the big objects cleanup --archive bigobject archives into, the engagement summary "
        "fields writeback writes on Contact and Lead, and a permission set for each. Deploy it "
        "with 'sf project deploy start' run in that folder.",
    )
    parser.add_argument("--out", required=True, help="folder for the sfdx project")

    def run(args: argparse.Namespace) -> int:
        from ierkit import metadata

        written = metadata.write_project(args.out)
        print(f"{len(written)} files written to {args.out}; deploy with:")
        print(f"  cd {args.out} && sf project deploy start --target-org YOUR_ORG")
        for permission_set in (metadata.PERMISSION_SET, metadata.WRITEBACK_PERMISSION_SET):
            print(f"  sf org assign permset --name {permission_set} --target-org YOUR_ORG")
        return 0

    return run


def _add_check(sub: Subparsers) -> Runner:
    parser = sub.add_parser(
        "check",
        help="check the prerequisites IERs need, against an org",
        description="Check that Marketing Cloud Connect's objects are readable, the Individual "
        "Email Results related list is on the Contact and Lead layouts, recent sends have "
        "individual tracking on and IERs keep arriving, and (with --extract) that Subscriber "
        "Keys are 18-character Contact or Lead Ids. Prints pass / fail / cannot tell with the "
        "fix; exits 1 when a check fails.",
    )
    _add_source(parser)
    parser.add_argument(
        "--extract",
        default=None,
        help="a recent tracking extract (zip, folder, or sftp://user@host/folder/*.zip: "
        "its newest file)",
    )
    parser.add_argument(
        "--days", type=positive_int, default=30, help="how far back recent sends go (days)"
    )
    parser.add_argument(
        "--as-of",
        type=parse_date,
        default=None,
        help="judge as of the end of this day (default: now, or a local org's last activity)",
    )

    def run(args: argparse.Namespace) -> int:
        from ierkit import prereq
        from ierkit.orgs import open_org

        events = None
        if args.extract:
            from ierkit import extract

            events = extract.read_extract(args.extract)
        as_of = None
        if args.as_of is not None:
            as_of = dt.datetime.combine(args.as_of, dt.time.max, tzinfo=dt.UTC)
        result = prereq.check_prerequisites(
            open_org(args.source), events=events, as_of=as_of, days=args.days
        )
        for check, status, detail, fix in result.iter_rows():  # seven rows
            print(f"[{status.upper()}] {check}: {detail}")
            if fix:
                print(f"    fix: {fix}")
        return 1 if (result.get_column("status") == prereq.FAIL).any() else 0

    return run


def _add_diagnose(sub: Subparsers) -> Runner:
    # "sync-health" says what the notebook and ierkit.sync_health say; "diagnose" is its older
    # name. Two parsers rather than argparse aliases: an alias is listed as "sync-health
    # (diagnose)" and its help reads "usage: ierkit sync-health", so "diagnose" would vanish
    # from the command list and its own help.
    description = (
        "Match every Sent row of a Marketing Cloud tracking extract to the org's Individual "
        "Email Results, give every recipient without one a reason (email or 15-character "
        "Subscriber Key, unknown Id, tracking off, imported audience, still syncing, ...), and "
        "print the coverage per send and what to fix first. 'ierkit sync-health' and 'ierkit "
        "diagnose' are the same command."
    )
    for name, help_text in (
        (
            "sync-health",
            "match a tracking extract's sends against the org's IERs and explain the missing",
        ),
        ("diagnose", "the same as sync-health (its older name)"),
    ):
        parser = sub.add_parser(name, help=help_text, description=description)
        _add_source(parser)
        parser.add_argument(
            "--extract",
            default=None,
            help="tracking extract (zip, folder, or sftp://user@host/folder/*.zip: its newest); "
            "default: the demo's own for the demo",
        )
        parser.add_argument(
            "--as-of",
            default=None,
            help="judge as of this day (YYYY-MM-DD, its end) or instant (YYYY-MM-DDTHH:MM, "
            "UTC); default: the source's own instant (the demo's, when a snapshot was "
            "pulled, or now)",
        )
        parser.add_argument(
            "--grace-hours",
            type=non_negative_float,
            default=2.0,
            help="a send younger than this is never called broken (default 2)",
        )
        parser.add_argument(
            "--cycle",
            choices=("hourly", "daily"),
            default="hourly",
            help="the Connect sync frequency (default hourly)",
        )

    def run(args: argparse.Namespace) -> int:
        import polars as pl

        from ierkit import sync_health
        from ierkit.orgs import open_org

        org = open_org(args.source)
        result = sync_health.diagnose(
            org,
            sync_health.default_extract(args.source, args.extract),
            as_of=sync_health.resolve_as_of(args.as_of, source=args.source, org=org),
            grace=dt.timedelta(hours=args.grace_hours),
            cycle=args.cycle,
        )
        print(f"Sync health as of {result.as_of:%Y-%m-%d %H:%M} UTC")
        table = result.coverage.select(
            "date_sent",
            "email_name",
            "sent",
            "iers",
            "coverage",
            "status",
            "main_reason",
            "expected_completion",
        ).with_columns(
            pl.col("coverage").round(3), pl.col("date_sent").dt.strftime("%Y-%m-%d %H:%M")
        )
        with pl.Config(
            tbl_rows=40,
            tbl_cols=-1,
            tbl_width_chars=160,
            fmt_str_lengths=45,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
        ):
            print(table)
        print()
        print(result.summary)
        return 0

    return run


# In the order a RevOps lead meets them: the weekly run first, the demo generator last.
COMMANDS: list[Callable[[Subparsers], Runner]] = [
    _add_weekly,
    _add_diagnose,
    _add_check,
    _add_aggregate,
    _add_storage,
    _add_writeback,
    _add_cleanup,
    _add_restore,
    _add_metadata,
    _add_demo,
]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (usage stays behind ``--help``).

    Subcommand parsers are of the same class: ``add_subparsers`` makes them with the parent's.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    """The argument parser and the runner of each command."""
    parser: argparse.ArgumentParser = _Parser(
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


def _data_problems(args: argparse.Namespace) -> list[str]:
    """Damaged tables or out-of-range values of the command's source, when it is local."""
    source = getattr(args, "source", None)
    if not isinstance(source, str) or source.split("+archive:", 1)[0] == "salesforce":
        return []  # a live org's tables are not files ierkit could check
    from ierkit.orgs import LocalOrg, open_org
    from ierkit.orgs.archived import ArchivedOrg

    try:
        org = open_org(source)
    except IerkitError:
        return []
    return org.table_problems() if isinstance(org, LocalOrg | ArchivedOrg) else []


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
    except pl.exceptions.PolarsError as error:
        # polars names neither table nor file; say which, when a damaged table explains it.
        from ierkit.archive import first_line

        problems = _data_problems(args)
        if not problems:
            raise  # not explained by the data: a traceback is the honest report
        shown = "; ".join(problems[:5])
        said = first_line(error)
        cause = "" if said in shown else f"{said}: "
        print(f"ierkit {args.command}: error: {cause}{shown}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ierkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
