"""`rxgate review ...` arguments and commands (imported by cli.py; heavy imports stay lazy).

    rxgate review [serve]                        the service (RXGATE_REVIEW_* settings)
    rxgate review add-user RPH-12 --name "..."   create a pharmacist (password asked twice,
                                                 or one line on stdin with --password-stdin)
    rxgate review migrate                        bring the store's schema up to date and exit
"""
from __future__ import annotations

import argparse
import getpass
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "The pharmacists' review service: the queue page, its JSON API and /metrics, configured "
        "by RXGATE_REVIEW_DB (sqlite:///PATH or postgresql://...), RXGATE_BROKER, "
        "RXGATE_REVIEW_HOST/PORT and the other RXGATE_REVIEW_* variables (README: Pharmacist "
        "review). Without a subcommand: serve.")
    sub = parser.add_subparsers(dest="review_command")
    sub.add_parser("serve", help="run the review service (the default)")
    a = sub.add_parser("add-user", help="create a pharmacist account (or reset its password)")
    a.add_argument("user_id", help="the pharmacist id published as pharmacist_id, e.g. RPH-12")
    a.add_argument("--name", required=True, help="the name shown on the page")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    a.add_argument("--reset-password", action="store_true",
                   help="the account exists: set a new password (ends its sessions)")
    sub.add_parser("migrate", help="bring the store's schema up to date and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "review_command", None) or "serve"
    if command == "serve":
        from .service import main

        return main()
    from ..stream.config import ConfigError
    from .config import ReviewSettings
    from .service import describe_db, open_store

    try:
        settings = ReviewSettings.from_env()
        store = open_store(settings)
    except ConfigError as e:
        print(f"rxgate review: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"rxgate review: cannot open the store: {e}", file=sys.stderr)
        return 2
    if command == "migrate":
        print(f"rxgate review: the store {describe_db(settings.db_url)} is up to date")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.user_id}: ")
        if getpass.getpass("again: ") != password:
            print("rxgate review: the passwords differ", file=sys.stderr)
            return 2
    try:
        store.add_user(args.user_id, args.name, password, replace=args.reset_password)
    except ValueError as e:
        print(f"rxgate review: {e}", file=sys.stderr)
        return 2
    print(f"rxgate review: {'password reset for' if args.reset_password else 'added'} "
          f"{args.user_id} ({args.name})")
    return 0
