"""Create the X-ray bucket if it is missing (idempotent): `manage.py ensure_bucket`.

Uses the storage settings the service itself uses (S3_BUCKET, S3_ENDPOINT_URL,
credentials, client config), so the bucket is made exactly where uploads go.
Retries while the S3 server is still starting (docker compose's one-shot job).
"""

import time

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from core.storage import uses_s3

ALREADY_THERE = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


class Command(BaseCommand):
    help = "Create the X-ray bucket (S3_BUCKET) if it does not exist."

    def add_arguments(self, parser):
        parser.add_argument("--attempts", type=int, default=30)
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between tries")

    def handle(self, *args, attempts: int, interval: float, **options):
        if not uses_s3():
            raise CommandError("S3_BUCKET is not set: X-rays are stored on the filesystem.")
        client = default_storage.connection.meta.client
        bucket = default_storage.bucket_name
        for _ in range(attempts):
            try:
                self._ensure(client, bucket)
                return
            except (BotoCoreError, ClientError) as exc:
                self.stderr.write(f"S3 not ready ({exc.__class__.__name__}: {exc}); retrying")
            time.sleep(interval)
        raise CommandError(f"could not create bucket {bucket}")

    def _ensure(self, client, bucket: str) -> None:
        try:
            client.head_bucket(Bucket=bucket)
            self.stdout.write(f"bucket {bucket} exists")
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
        region = settings.STORAGES["default"]["OPTIONS"].get("region_name") or "us-east-1"
        kwargs = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ALREADY_THERE:
                raise
        self.stdout.write(f"bucket {bucket} created")
