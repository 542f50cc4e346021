"""`mediexchange`: the portal administrator's command line (SPEC section 6).

Talks to the store named by DYNAMODB_ENDPOINT_URL (the one `make run` prints) or, unset, to AWS
with the usual credentials and the table names in CLINICS_TABLE / CLIENT_KEYS_TABLE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from mediexchange.errors import ServiceError
from mediexchange.timeutil import DEFAULT_TIMEZONE, is_valid_zone


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediexchange", description="Administer MediExchange clinics.")
    commands = parser.add_subparsers(dest="noun", required=True)
    clinic = commands.add_parser("clinic", help="issue, list, disable clinics; rotate and revoke their keys")
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
    return parser


def run(args: argparse.Namespace) -> None:
    from mediexchange.store import clinics  # after the environment is settled: models read it on import

    if args.verb == "create":
        if not is_valid_zone(args.timezone):
            raise ServiceError(f"unknown time zone {args.timezone!r} (use an IANA name such as Europe/Moscow)")
        client_key = (args.client_key or "").strip() or clinics.new_client_key()
        clinic = clinics.create_clinic(args.name.strip(), args.timezone, client_key)
        if args.json:
            print(
                json.dumps(
                    {
                        "clinic_id": clinic.clinic_id,
                        "name": clinic.name,
                        "timezone": clinic.timezone,
                        "client_key": client_key,
                    }
                )
            )
        else:
            print(f"clinic_id: {clinic.clinic_id}\nname: {clinic.name}\ntimezone: {clinic.timezone}")
            print(client_key)
    elif args.verb == "list":
        for clinic, keys in clinics.list_clinics():
            state = "enabled" if clinic.enabled else "disabled"
            print(f"{clinic.clinic_id}\t{state}\t{keys} key(s)\t{clinic.timezone}\t{clinic.name}")
    elif args.verb == "disable":
        clinics.disable_clinic(args.clinic_id)
        print(f"clinic {args.clinic_id} disabled")
    elif args.verb == "rotate-key":
        print(clinics.rotate_key(args.clinic_id))
    elif args.verb == "revoke-key":
        clinics.revoke_key(args.clinic_id, args.key)
        print(f"key revoked for clinic {args.clinic_id}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if os.environ.get("DYNAMODB_ENDPOINT_URL"):
        # The local store accepts any credentials but botocore insists on some.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    try:
        run(args)
    except ServiceError as exc:
        print(f"mediexchange: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
