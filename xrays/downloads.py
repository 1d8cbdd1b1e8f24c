"""Short-lived download URLs (design §7).

S3: a presigned GET (signed by the storage, verified by S3). Filesystem: a
URL to our own download view carrying a signed, expiring token for exactly
that record, so it can be handed to a viewer without the caller's JWT.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from core.storage import uses_s3

from .models import XrayImage

TOKEN_SALT = "xrays.download"  # noqa: S105 - a signing namespace, not a secret


@dataclass
class DownloadLink:
    url: str
    expires_at: datetime


def download_link(xray: XrayImage, request=None) -> DownloadLink:
    """A signed URL; absolute when a request is given, else site-relative (admin)."""
    seconds = settings.XRAY_DOWNLOAD_URL_SECONDS
    expires_at = timezone.now() + timedelta(seconds=seconds)
    filename = f"{xray.pk}.{xray.file.name.rsplit('.', 1)[-1]}"
    if uses_s3():
        url = default_storage.url(
            xray.file.name,
            parameters={
                "ResponseContentType": xray.content_type,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            expire=seconds,
        )
    else:
        token = signing.dumps(str(xray.pk), salt=TOKEN_SALT)
        path = reverse("xray-file", kwargs={"pk": xray.pk})
        url = f"{path}?token={token}"
        if request is not None:
            url = request.build_absolute_uri(url)
    return DownloadLink(url=url, expires_at=expires_at)


def check_download_token(xray_id, token: str) -> bool:
    try:
        signed_id = signing.loads(
            token, salt=TOKEN_SALT, max_age=settings.XRAY_DOWNLOAD_URL_SECONDS
        )
    except signing.BadSignature:  # also SignatureExpired
        return False
    return signed_id == str(xray_id)
