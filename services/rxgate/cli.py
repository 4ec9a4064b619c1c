"""`rxgate` subcommands. Argument parsing only: each subcommand lives in its own module."""
from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap

from . import package_version


def _check(args: argparse.Namespace) -> int:
    from .check import run_check, run_check_fhir

    if args.fhir:
        return run_check_fhir(args.file, knowledge_dir=args.knowledge_dir)
    return run_check(args.file, knowledge_dir=args.knowledge_dir)


def _schemas(args: argparse.Namespace) -> int:
    from .schemas import write_schemas, check_schemas

    return check_schemas(args.dir) if args.check else write_schemas(args.dir)


def _knowledge(args: argparse.Namespace) -> int:
    if args.action == "check":
        from .knowledge_diff import run_knowledge_check

        return run_knowledge_check(args.dir)
    if args.action == "diff":
        from .knowledge_diff import run_knowledge_diff

        return run_knowledge_diff(args.old_dir, args.new_dir, args.events, as_json=args.json,
                                  examples=args.examples)

    from .knowledge import KnowledgeError, load_knowledge

    try:
        k = load_knowledge(args.knowledge_dir)
    except KnowledgeError as e:
        print(f"rxgate: {e}", file=sys.stderr)
        return 2
    print(f"knowledge {k.version}: {len(k.monographs)} monograph(s): "
          + ", ".join(sorted(k.monographs)))
    return 0


def _broker(args: argparse.Namespace) -> int:
    from .broker import main as broker_main

    return broker_main(port=args.port)


def _worker(args: argparse.Namespace) -> int:
    from .stream.worker import main as worker_main

    return worker_main()


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main(once=args.once, port=args.port)


def port_number(value: str) -> int:
    """An argparse type: a TCP port a broker can listen on (1-65535)."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number from 1 to 65535")
    return port


def _count(value: str) -> int:
    """An argparse type: a whole number from 0."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is below 0")
    return n


def worker_settings_help() -> str:
    """The RXGATE_* variables with their defaults, read from the one table that documents
    them (the docstring of rxgate.stream.config), for `rxgate worker --help`."""
    from .stream import config

    rows = re.findall(r"^\|\s*`(RXGATE_[A-Z0-9_]+)`\s*\|([^|]*)\|(.*)\|\s*$",
                      config.__doc__ or "", re.MULTILINE)
    lines = ["environment variables (default in brackets):"]
    for name, default, meaning in rows:
        default = default.strip().replace("`", "")
        meaning = meaning.strip().replace("`", "")
        lines.append(f"  {name} [{default}]")
        lines.extend(textwrap.wrap(meaning, width=88, initial_indent="      ",
                                   subsequent_indent="      ", break_on_hyphens=False))
    lines.append("")
    lines.append("A value that does not parse stops start-up (exit 2) with a message naming "
                 "the variable.")
    return "\n".join(lines)


def _cds(args: argparse.Namespace) -> int:
    from .cds.app import main as cds_main

    return cds_main()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rxgate",
        description="Validate medication orders against drug monographs: offline "
                    "(rxgate check) or on a Kafka stream (rxgate worker).",
        epilog="`rxgate COMMAND --help` says what each command does.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "check", help="validate a JSON Lines file of order events offline",
        description="Read order events as JSON Lines and write one JSON line per placed order "
                    "(a decision) or unreadable line (a dead letter) to standard output, by the "
                    "same checks the stream runs. Exit 0 when the input was read whole, 2 when "
                    "the file or the knowledge cannot be opened.")
    c.add_argument("file", help="JSON Lines file of order events, or - for standard input")
    c.add_argument("--knowledge-dir", default=None,
                   help="monograph directory (default: $RXGATE_KNOWLEDGE_DIR or the built-in one)")
    c.add_argument("--fhir", action="store_true",
                   help="FILE holds FHIR R4 Bundles (one Bundle, or JSON Lines of Bundles)")
    c.set_defaults(func=_check)

    s = sub.add_parser(
        "schemas", help="write the contract's JSON Schemas",
        description="Write schemas/*.schema.json from the contract's pydantic models, or with "
                    "--check compare them (exit 1 when a file is out of date or missing). Run it "
                    "in the repository root, or pass --dir.")
    s.add_argument("--dir", default="schemas", help="output directory (default: schemas)")
    s.add_argument("--check", action="store_true",
                   help="do not write; exit 1 when the files differ from the models")
    s.set_defaults(func=_schemas)

    k = sub.add_parser(
        "knowledge", help="validate drug knowledge; see what a new version would change",
        description="Without an action: load every knowledge file (monographs, routes, labs, "
                    "drug classes), check them and their cross-references, and print the version "
                    "and the drugs. `knowledge check DIR` validates a directory (CI for a "
                    "knowledge repository); `knowledge diff OLD_DIR NEW_DIR EVENTS` replays "
                    "order events through both versions and reports the decisions that change. "
                    "Exit 2 with the file and field at fault when something does not load.")
    k.add_argument("--knowledge-dir", default=None,
                   help="monograph directory (default: $RXGATE_KNOWLEDGE_DIR or the built-in one)")
    k.set_defaults(func=_knowledge, action=None)
    actions = k.add_subparsers(dest="action", metavar="ACTION")
    kc = actions.add_parser(
        "check", help="validate a knowledge directory; start nothing",
        description="Load the knowledge directory DIR as the worker would (all or nothing) and "
                    "print one line: its version, its drugs and how many rule ids they can "
                    "emit. Exit 0 when it loads, 2 with the file and field at fault when it "
                    "does not. Meant as the CI check of a knowledge repository.")
    kc.add_argument("dir", metavar="DIR", help="knowledge directory (knowledge.toml, drugs/, ...)")
    kd = actions.add_parser(
        "diff", help="replay order events through two knowledge versions, report what changes",
        description="Replay the order events of EVENTS (JSON Lines, as `rxgate check` reads "
                    "them; - for standard input) through OLD_DIR and NEW_DIR, each with its own "
                    "fresh history, and report the decisions that would change: outcomes "
                    "(approved -> flagged and back), severity up or down, and per rule id the "
                    "findings added, removed or changed, with the first examples of each as line "
                    "number and event_id. Exit 0 when no decision changes, 1 when some do, 2 on "
                    "an error (a directory does not load, EVENTS cannot be read or holds no "
                    "placed order).")
    kd.add_argument("old_dir", metavar="OLD_DIR", help="the knowledge in use")
    kd.add_argument("new_dir", metavar="NEW_DIR", help="the knowledge to roll out")
    kd.add_argument("events", metavar="EVENTS", help="JSON Lines file of order events, or -")
    kd.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    kd.add_argument("--examples", type=_count, default=5, metavar="N",
                    help="examples shown per kind of change (default: 5)")

    b = sub.add_parser(
        "broker", help="run the embedded Tansu broker on loopback",
        description="Run the embedded Kafka-protocol broker (Tansu, in memory) on 127.0.0.1 "
                    "until Ctrl-C or SIGTERM, for development and the demo; never for "
                    "production. Needs the `embedded` extra.")
    b.add_argument("--port", type=port_number, default=9092,
                   help="port to listen on, 1-65535 (default: 9092)")
    b.set_defaults(func=_broker)

    w = sub.add_parser(
        "worker", help="run the streaming validator (configured by RXGATE_* env)",
        description=textwrap.fill(
            "Run the streaming validator: read rx.orders.v1, publish one decision per order to "
            "rx.decisions.approved.v1 / rx.decisions.flagged.v1 and dead letters to "
            "rx.orders.invalid.v1, serve /metrics and /healthz. Runs until SIGINT or SIGTERM. "
            "Configured by environment variables only.", width=88),
        epilog=worker_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    w.set_defaults(func=_worker)

    d = sub.add_parser(
        "demo", help="start a broker and a worker, stream sample orders, show decisions",
        description="Start the embedded broker and a worker, publish a sample stream of "
                    "isatuximab orders and print each decision as a pharmacist reads it, then "
                    "the metrics. Without --once it keeps showing decisions for anything else "
                    "published to rx.orders.v1 until Ctrl-C. Needs the `embedded` extra.")
    d.add_argument("--once", action="store_true", help="stop after the sample stream")
    d.add_argument("--port", type=port_number, default=None,
                   help="broker port (default: a free loopback port)")
    d.set_defaults(func=_demo)

    from .review.commands import add_arguments as add_review_arguments

    add_review_arguments(sub.add_parser(
        "review", help="the pharmacists' review service: queue page, JSON API, add-user"))
    h = sub.add_parser(
        "cds", help="serve the CDS Hooks 2.0 service (configured by RXGATE_CDS_* env)",
        description="Serve the CDS Hooks 2.0 service (order-sign, order-select, "
                    "medication-verify; discovery at /cds-services) with uvicorn: an EHR sends "
                    "FHIR R4 resources and gets the findings of the same Processor as cards. "
                    "Configured by the RXGATE_CDS_* variables (see the README).")
    h.set_defaults(func=_cds)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`rxgate check big.jsonl | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
