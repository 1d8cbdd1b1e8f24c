"""`manage.py ensure_bucket`: creates the bucket where uploads go, and is idempotent."""

import pytest
from django.core.management import CommandError, call_command


def test_it_refuses_in_filesystem_mode(db):
    with pytest.raises(CommandError, match="S3_BUCKET is not set"):
        call_command("ensure_bucket")


@pytest.mark.s3
def test_it_creates_the_bucket_once(s3_storage, settings, capsys):
    settings.STORAGES["default"]["OPTIONS"]["bucket_name"] = "fresh-bucket"
    client = s3_storage.client()
    assert "fresh-bucket" not in {b["Name"] for b in client.list_buckets()["Buckets"]}

    call_command("ensure_bucket")
    call_command("ensure_bucket")

    assert "fresh-bucket" in {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert capsys.readouterr().out.splitlines() == [
        "bucket fresh-bucket created",
        "bucket fresh-bucket exists",
    ]
    client.delete_bucket(Bucket="fresh-bucket")
