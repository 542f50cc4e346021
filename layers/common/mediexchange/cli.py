"""`mediexchange`: the portal administrator's command line (SPEC section 6).

Talks to the store named by DYNAMODB_ENDPOINT_URL (the one `make run` prints), whatever AWS_*
variables the shell has, or, unset, to AWS with the usual credentials and the table names in
CLINICS_TABLE / CLIENT_KEYS_TABLE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import MutableMapping, Sequence

from mediexchange.config import ConfigurationError, Settings
from mediexchange.errors import AdminError, ServiceError
from mediexchange.keys import new_client_key
from mediexchange.records import Clinic, ExportNames, hours_from_text, hours_text
from mediexchange.store import Store
from mediexchange.timeutil import DEFAULT_TIMEZONE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediexchange", description="Administer MediExchange clinics.")
    commands = parser.add_subparsers(dest="noun", required=True)
    clinic = commands.add_parser("clinic", help="issue, list, disable, set up clinics; rotate and revoke their keys")
    verbs = clinic.add_subparsers(dest="verb", required=True)

    create = verbs.add_parser("create", help="issue a clinic; prints its client_key on the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--timezone", default=DEFAULT_TIMEZONE, help=f"IANA time zone (default {DEFAULT_TIMEZONE})")
    create.add_argument("--client-key", help="keep a key the clinic already has (moving from the original portal)")
    create.add_argument("--json", action="store_true", help="print one JSON object with clinic_id and client_key")

    verbs.add_parser("list", help="every clinic with its state and number of live keys")
    disable = verbs.add_parser("disable", help="refuse every request of a clinic from now on")
    disable.add_argument("clinic_id")
    rotate = verbs.add_parser("rotate-key", help="issue a second key; the old one works until revoked")
    rotate.add_argument("clinic_id")
    revoke = verbs.add_parser("revoke-key", help="stop accepting one key of a clinic")
    revoke.add_argument("clinic_id")
    revoke.add_argument("key")
    settings = verbs.add_parser("set", help="change a clinic's settings; prints them, one `name: value` a line")
    settings.add_argument("clinic_id")
    settings.add_argument("--timezone", help="IANA time zone of the clinic's local times")
    settings.add_argument(
        "--export-names",
        choices=[names.value for names in ExportNames],
        help="the export's attribute names: the sample's spelling (ID Status …, default) or the table's (id status …)",
    )
    settings.add_argument(
        "--stale-after", metavar="HOURS", help="no Appointments for longer than this and the clinic offers no slots"
    )
    console = commands.add_parser("console", help="the web console")
    console_verbs = console.add_subparsers(dest="verb", required=True)
    link = console_verbs.add_parser(
        "link", help="print a fresh one-time operator sign-in URL (where no Cognito user pool is configured)"
    )
    link.add_argument("--base-url", default="http://127.0.0.1:3000", help="the API's URL (default: make run's)")
    return parser


def _positive_hours(raw: str) -> float:
    hours = hours_from_text(raw)
    if hours is None:
        raise AdminError(f"--stale-after must be a positive number of hours, got {raw!r}")
    return hours


def _settings_lines(clinic: Clinic) -> str:
    return "\n".join(
        [
            f"clinic_id: {clinic.clinic_id}",
            f"name: {clinic.name}",
            f"timezone: {clinic.timezone}",
            f"export_names: {clinic.export_names.value}",
            f"stale_after_hours: {hours_text(clinic.stale_after_hours)}",
        ]
    )


def set_clinic(store: Store, args: argparse.Namespace) -> None:
    """`clinic set`: check every option given before changing anything, then print the clinic's settings."""
    if args.timezone is None and args.export_names is None and args.stale_after is None:
        raise AdminError("clinic set needs at least one of --timezone, --export-names, --stale-after")
    hours = _positive_hours(args.stale_after) if args.stale_after is not None else None
    names = ExportNames(args.export_names) if args.export_names is not None else None
    clinic = store.clinics.update_settings(
        args.clinic_id, timezone=args.timezone, export_names=names, stale_after_hours=hours
    )
    print(_settings_lines(clinic))


def run(store: Store, args: argparse.Namespace) -> None:
    if args.noun == "console":
        from mediexchange.console.auth import one_time_url

        print(one_time_url(store, args.base_url))
        return
    clinics = store.clinics
    if args.verb == "create":
        client_key = (args.client_key or "").strip() or new_client_key()
        clinic = clinics.create(args.name.strip(), args.timezone, client_key)
        if args.json:
            fields = {"clinic_id": clinic.clinic_id, "name": clinic.name, "timezone": clinic.timezone}
            print(json.dumps({**fields, "client_key": client_key}))
        else:
            print(f"clinic_id: {clinic.clinic_id}\nname: {clinic.name}\ntimezone: {clinic.timezone}")
            print(client_key)
    elif args.verb == "list":
        for clinic, keys in clinics.list():
            state = "enabled" if clinic.enabled else "disabled"
            print(f"{clinic.clinic_id}\t{state}\t{keys} key(s)\t{clinic.timezone}\t{clinic.name}")
    elif args.verb == "disable":
        clinics.disable(args.clinic_id)
        print(f"clinic {args.clinic_id} disabled")
    elif args.verb == "rotate-key":
        print(clinics.rotate_key(args.clinic_id))
    elif args.verb == "revoke-key":
        clinics.revoke_key(args.clinic_id, args.key)
        print(f"key revoked for clinic {args.clinic_id}")
    elif args.verb == "set":
        set_clinic(store, args)


def forget_aws_shell_settings(environ: MutableMapping[str, str]) -> None:
    """With a local store named, the shell's AWS_* variables (a profile, another region, a CA bundle)
    could only send the CLI somewhere else: it drops them (the local store needs none)."""
    if environ.get("DYNAMODB_ENDPOINT_URL"):
        for name in [name for name in environ if name.startswith("AWS_")]:
            del environ[name]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    forget_aws_shell_settings(os.environ)
    try:
        run(Store(Settings.from_env()), args)
    except (ServiceError, ConfigurationError) as exc:
        cause = f" ({describe(exc.__cause__)})" if exc.__cause__ else ""
        print(f"mediexchange: {exc}{cause}", file=sys.stderr)
        return 2
    except Exception as exc:  # the store unreachable, missing tables, no credentials: one line, no traceback
        print(f"mediexchange: the store refused the command ({describe(exc)})", file=sys.stderr)
        return 1
    return 0


def describe(exc: BaseException) -> str:
    """What went wrong in a few words: the store's own error code and message, or the error's type."""
    cause = getattr(exc, "cause", None) or exc
    message = str(cause).splitlines()[0] if str(cause) else ""
    return f"{type(cause).__name__}: {message}" if message else type(cause).__name__


if __name__ == "__main__":
    sys.exit(main())
