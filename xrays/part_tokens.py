"""Part URLs of filesystem mode (design §13): the service stands in for S3.

Like a presigned S3 URL, a part URL is a capability for exactly one part of one
upload session until it expires: the signed token names the session, its
storage upload id and the part number, and carries its own lifetime. No JWT is
needed (the device may hand the URL to a background uploader).
"""

from django.core import signing
from django.urls import reverse

TOKEN_SALT = "xrays.upload-part"  # noqa: S105 - a signing namespace, not a secret


def part_url(*, session, number: int, seconds: int, request=None) -> str:
    token = signing.dumps(
        {"s": str(session.pk), "u": session.storage_upload_id, "n": number, "t": seconds},
        salt=TOKEN_SALT,
        compress=True,
    )
    path = reverse("xray-upload-part", kwargs={"pk": session.pk, "number": number})
    url = f"{path}?token={token}"
    return request.build_absolute_uri(url) if request is not None else url


def check_part_token(token: str, *, session_id, upload_id: str, number: int) -> bool:
    """True if `token` is a live part URL's token for exactly this part of this upload."""
    try:
        claims = signing.loads(token, salt=TOKEN_SALT)
        # The lifetime was signed with it: verify the age against that.
        signing.loads(token, salt=TOKEN_SALT, max_age=int(claims["t"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):  # also SignatureExpired
        return False
    return (
        claims.get("s") == str(session_id)
        and claims.get("u") == upload_id
        and (claims.get("n") == number)
    )
