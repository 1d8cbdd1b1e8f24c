"""Private S3 storage that uploads spooled files from disk by path.

django-storages hands every file to boto3's upload_fileobj, which copies each
multipart part into memory (up to 10 parts of 8 MB waiting at once). Uploads
here are always spooled to a temporary file first (xrays.uploads), so boto3 can
read the parts straight from that file instead: memory stays flat whatever the
size of the X-ray (bench/README.md, "X-ray upload").
"""

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

# What storage can raise when it is down or refuses: connection and client errors,
# S3's own answers (ClientError), and boto3's transfer errors, which wrap a ClientError
# (upload_file raises S3UploadFailedError) and are neither of the others.
STORAGE_ERRORS = (BotoCoreError, ClientError, Boto3Error, OSError)


def storage_failure(exc: BaseException) -> str:
    """What went wrong with storage, for a log line: the error, S3's code and status."""
    answer = exc
    while answer is not None and not isinstance(answer, ClientError):
        answer = answer.__cause__ or answer.__context__
    if answer is None:
        return exc.__class__.__name__
    code = answer.response.get("Error", {}).get("Code", "?")
    status = answer.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"{exc.__class__.__name__} {code} (HTTP {status})"


def uses_s3() -> bool:
    """True when X-ray files live in an S3 bucket (S3_BUCKET set), else on disk."""
    return isinstance(default_storage, S3Storage)


class PrivateS3Storage(S3Storage):
    def _save(self, name, content):
        temporary_path = getattr(content, "temporary_file_path", None)
        if temporary_path is None or self.gzip:
            return super()._save(name, content)
        cleaned_name = clean_name(name)
        key = self._normalize_name(cleaned_name)
        self.bucket.Object(key).upload_file(
            temporary_path(),
            ExtraArgs=self._get_write_parameters(key, content),
            Config=self.transfer_config,
        )
        return cleaned_name
