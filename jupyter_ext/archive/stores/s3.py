"""S3 through boto3: per-object storage class, SSE-S3/KMS, multipart with
concurrency, retries with exponential backoff, RestoreObject and x-amz-restore."""

from __future__ import annotations

import io
import random
import re
import time
import urllib.parse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ...constants import STORAGE_CLASSES, TIER_NAMES
from ..errors import ConfigError, NotFound, ObjectArchived, StoreError
from ..pricing import check_class
from .base import ObjectInfo, Store

SSE_MODES = ("", "AES256", "aws:kms")
RETRY_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout",
               "RequestTimeTooSkewed", "500", "503", "Throttling"}
_ONGOING = re.compile(r'ongoing-request="(true|false)"')


def parse_restore_header(value: str | None) -> str | None:
    """Map an ``x-amz-restore`` header to None / "ongoing" / "done"."""
    if not value:
        return None
    m = _ONGOING.search(value)
    if not m:
        return None
    return "ongoing" if m.group(1) == "true" else "done"


def store_error(exc: Exception, op: str, where: str) -> StoreError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return StoreError(f"S3 {op} {where}: {err.get('Code', '?')}: {err.get('Message', '')}")
    return StoreError(f"S3 {op} {where}: {exc}")


def with_retries(fn, attempts: int = 6, base: float = 0.2, cap: float = 8.0):
    """Call ``fn`` and retry transient failures with full-jitter exponential backoff."""
    for attempt in range(attempts):
        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in RETRY_CODES or attempt == attempts - 1:
                raise
        except BotoCoreError:
            if attempt == attempts - 1:
                raise
        time.sleep(random.uniform(0, min(cap, base * 2**attempt)))
    raise AssertionError("unreachable")


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", *, sse: str = "", kms_key_id: str = "",
                 endpoint_url: str | None = None, region: str | None = None,
                 multipart_threshold: int = 16 * 1024 * 1024,
                 multipart_chunksize: int = 8 * 1024 * 1024, concurrency: int = 4,
                 max_attempts: int = 8, client=None):
        if sse not in SSE_MODES:
            raise ConfigError(f"sse: {sse!r} is not one of '', 'AES256', 'aws:kms'")
        if kms_key_id and sse != "aws:kms":
            raise ConfigError("kms_key_id: only valid with sse='aws:kms'")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self.sse, self.kms_key_id = sse, kms_key_id
        config = Config(retries={"max_attempts": max_attempts, "mode": "standard"},
                        max_pool_connections=max(10, concurrency * 4))
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url,
                                             region_name=region, config=config)
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                       multipart_chunksize=multipart_chunksize,
                                       max_concurrency=concurrency, use_threads=True)
        self.multipart_threshold = multipart_threshold

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _extra(self, storage_class, tags) -> dict:
        extra = {}
        if storage_class and storage_class != "STANDARD":
            extra["StorageClass"] = check_class(storage_class)
        if self.sse:
            extra["ServerSideEncryption"] = self.sse
            if self.kms_key_id:
                extra["SSEKMSKeyId"] = self.kms_key_id
        if tags:
            extra["Tagging"] = urllib.parse.urlencode(tags)
        return extra

    def put(self, key, data, *, storage_class=None, tags=None):
        extra = self._extra(storage_class, tags)
        if len(data) >= self.multipart_threshold:
            def upload():
                self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key),
                                           ExtraArgs=extra, Config=self.transfer)
        else:
            def upload():
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                       **extra)
        try:
            with_retries(upload)
        except (ClientError, BotoCoreError) as exc:
            raise store_error(exc, "put", f"s3://{self.bucket}/{self._key(key)}") from None

    def get(self, key, start=None, length=None):
        kwargs = {"Bucket": self.bucket, "Key": self._key(key)}
        if start is not None or length is not None:
            s = start or 0
            kwargs["Range"] = f"bytes={s}-" if length is None else f"bytes={s}-{s + length - 1}"
        try:
            return with_retries(lambda: self.client.get_object(**kwargs)["Body"].read())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise NotFound(f"object {key!r} not found") from None
            if code == "InvalidObjectState":
                raise ObjectArchived(f"object {key!r} is archived; restore it first") from None
            raise store_error(exc, "get", f"s3://{self.bucket}/{self._key(key)}") from None
        except BotoCoreError as exc:
            raise store_error(exc, "get", f"s3://{self.bucket}/{self._key(key)}") from None

    def list(self, prefix):
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix))
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(obj["Key"][len(self.prefix):], obj["Size"],
                                     obj.get("StorageClass", "STANDARD"))
        except (ClientError, BotoCoreError) as exc:
            raise store_error(exc, "list", f"s3://{self.bucket}/{self._key(prefix)}") from None

    def head(self, key):
        try:
            r = with_retries(lambda: self.client.head_object(Bucket=self.bucket,
                                                             Key=self._key(key)))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound(f"object {key!r} not found") from None
            raise store_error(exc, "head", f"s3://{self.bucket}/{self._key(key)}") from None
        return ObjectInfo(key, r["ContentLength"], r.get("StorageClass", "STANDARD"),
                          parse_restore_header(r.get("Restore")))

    def delete(self, key):
        with_retries(lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(key)))

    def request_restore(self, key, tier, days):
        if tier not in TIER_NAMES:
            raise ConfigError(f"tier: {tier!r} is not one of {', '.join(TIER_NAMES)}")
        request = {"Days": int(days), "GlacierJobParameters": {"Tier": TIER_NAMES[tier]}}
        try:
            with_retries(lambda: self.client.restore_object(
                Bucket=self.bucket, Key=self._key(key), RestoreRequest=request))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "RestoreAlreadyInProgress":
                raise store_error(exc, "restore", f"s3://{self.bucket}/{self._key(key)}"
                                  ) from None

    def get_lifecycle(self):
        try:
            r = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return []
            raise
        return r.get("Rules", [])

    def put_lifecycle(self, rules):
        config = {"Rules": rules}
        self.client.put_bucket_lifecycle_configuration(Bucket=self.bucket,
                                                       LifecycleConfiguration=config)
        return config


__all__ = ["S3Store", "STORAGE_CLASSES", "parse_restore_header", "with_retries"]
