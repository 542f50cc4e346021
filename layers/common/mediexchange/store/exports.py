"""Answers too large for one Lambda response (an export of many orders, a huge ImportResult): kept in the
documents bucket under `exports/` and fetched by the client through a short-lived presigned URL.

The bucket's lifecycle rule for `exports/` removes them after a day; the URL stops working long before.
"""

from __future__ import annotations

import datetime as dt
import secrets

from mediexchange.store.backend import Backend, guarded

PREFIX = "exports/"
# How long a presigned URL works: the client follows the redirect at once, and a download that has
# started finishes whatever the URL's age.
URL_SECONDS = 300


def export_key(folder: str, now: dt.datetime) -> str:
    """A key no one can guess, under exports/<folder>/, sortable by time for whoever looks at the bucket."""
    return f"{PREFIX}{folder}/{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(16)}.xml"


@guarded
class Exports:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.settings = backend.settings

    def keep(self, folder: str, body: bytes, content_type: str, now: dt.datetime | None = None) -> str:
        """Store `body` under exports/<folder>/ and return a URL that fetches it, with `content_type`, for
        URL_SECONDS; the document is stored as it is (no Content-Encoding), so any client can read it."""
        key = export_key(folder, now or dt.datetime.now(dt.UTC))
        bucket = self.settings.documents_bucket
        self.backend.s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl="private, no-store"
        )
        url = self.backend.s3_presigner.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=URL_SECONDS
        )
        return str(url)
