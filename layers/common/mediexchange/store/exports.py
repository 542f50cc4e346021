"""Answers too large for one Lambda response (an export of many orders, a huge ImportResult): kept in the
documents bucket under `exports/` and fetched by the client through a short-lived presigned URL.

The bucket's lifecycle rule for `exports/` removes them after a day; the URL stops working long before.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from typing import Any

import boto3
from botocore.config import Config

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
        self._lock = threading.Lock()
        self._signer: Any = None

    def _presigner(self) -> Any:
        """An S3 client for presigning only: SigV4 and, in AWS, the bucket's regional virtual host
        (`https://<bucket>.s3.<region>.amazonaws.com/…`), which works from the first minute of a bucket in
        any region; against a local store, path style on its endpoint (`http://127.0.0.1:<port>/<bucket>/…`)."""
        with self._lock:
            if self._signer is None:
                key_id, secret = self.settings.credentials or (None, None)
                session = boto3.session.Session(
                    region_name=self.settings.region, aws_access_key_id=key_id, aws_secret_access_key=secret
                )
                style = "path" if self.settings.endpoint_url else "virtual"
                config = Config(signature_version="s3v4", s3={"addressing_style": style})
                self._signer = session.client("s3", endpoint_url=self.settings.endpoint_url, config=config)
            return self._signer

    def keep(self, folder: str, body: bytes, content_type: str, now: dt.datetime | None = None) -> str:
        """Store `body` under exports/<folder>/ and return a URL that fetches it, with `content_type`, for
        URL_SECONDS; the document is stored as it is (no Content-Encoding), so any client can read it."""
        key = export_key(folder, now or dt.datetime.now(dt.UTC))
        bucket = self.settings.documents_bucket
        self.backend.s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl="private, no-store"
        )
        url = self._presigner().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=URL_SECONDS
        )
        return str(url)
