"""Private S3 storage that uploads spooled files from disk by path.

django-storages hands every file to boto3's upload_fileobj, which copies each
multipart part into memory (up to 10 parts of 8 MB waiting at once). Uploads
here are always spooled to a temporary file first (xrays.uploads), so boto3 can
read the parts straight from that file instead: memory stays flat whatever the
size of the X-ray (bench/README.md, "X-ray upload").
"""

from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


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
