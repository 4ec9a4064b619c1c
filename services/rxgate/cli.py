"""`rxgate` subcommands. Argument parsing only: each subcommand lives in its own module."""
from __future__ import annotations

import argparse
import os
import sys


def _check(args: argparse.Namespace) -> int:
    from .check import run_check, run_check_fhir

    if args.fhir:
        return run_check_fhir(args.file, knowledge_dir=args.knowledge_dir)
    return run_check(args.file, knowledge_dir=args.knowledge_dir)


def _schemas(args: argparse.Namespace) -> int:
    from .schemas import write_schemas, check_schemas

    return check_schemas(args.dir) if args.check else write_schemas(args.dir)


def _knowledge(args: argparse.Namespace) -> int:
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


def _cds(args: argparse.Namespace) -> int:
    from .cds.app import main as cds_main

    return cds_main()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rxgate",
        description="Validate medication orders against drug monographs.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate a JSON Lines file of order events offline")
    c.add_argument("file", help="JSON Lines file of order events, or - for standard input")
    c.add_argument("--knowledge-dir", default=None,
                   help="monograph directory (default: $RXGATE_KNOWLEDGE_DIR or the built-in one)")
    c.add_argument("--fhir", action="store_true",
                   help="FILE holds FHIR R4 Bundles (one Bundle, or JSON Lines of Bundles)")
    c.set_defaults(func=_check)

    s = sub.add_parser("schemas", help="write the contract's JSON Schemas")
    s.add_argument("--dir", default="schemas", help="output directory (default: schemas)")
    s.add_argument("--check", action="store_true",
                   help="do not write; exit 1 when the files differ from the models")
    s.set_defaults(func=_schemas)

    k = sub.add_parser("knowledge", help="load and validate the drug knowledge, print its version")
    k.add_argument("--knowledge-dir", default=None)
    k.set_defaults(func=_knowledge)

    b = sub.add_parser("broker", help="run the embedded Tansu broker on loopback")
    b.add_argument("--port", type=int, default=9092)
    b.set_defaults(func=_broker)

    w = sub.add_parser("worker", help="run the streaming validator (configured by RXGATE_* env)")
    w.set_defaults(func=_worker)

    d = sub.add_parser("demo", help="start a broker and a worker, stream sample orders, show decisions")
    d.add_argument("--once", action="store_true", help="stop after the sample stream")
    d.add_argument("--port", type=int, default=None,
                   help="broker port (default: a free loopback port)")
    d.set_defaults(func=_demo)
    h = sub.add_parser("cds", help="serve the CDS Hooks 2.0 service (configured by RXGATE_CDS_* env)")
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
