"""Write template.yaml with every optional part switched on, for checkov.

checkov evaluates a resource's Condition with the parameters' defaults, so with the defaults it never
looks at the custom domain or the CloudFront distribution. This copy differs only in those defaults.

Usage: python checks/every_option.py TEMPLATE OUTPUT
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

EVERY_OPTION = {
    "ApiGatewayLoggingRole": "create",
    "DomainName": "exchange.example",
    "DomainCertificateArn": "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
    "LegacyHttp": '"true"',
    "LegacyHttpDomainName": "legacy.exchange.example",
    "LegacyHttpCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
}


def with_every_option(text: str) -> str:
    for name, value in EVERY_OPTION.items():
        default = re.compile(rf"(\n  {name}:\n    Type: \w+\n    Default: )[^\n]*")
        text, found = default.subn(rf"\g<1>{value}", text, count=1)
        if not found:
            raise SystemExit(f"every_option.py: no parameter {name} with a Default in the template")
    return text


def main() -> None:
    source, target = (Path(arg) for arg in sys.argv[1:3])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(with_every_option(source.read_text()))


if __name__ == "__main__":
    main()
