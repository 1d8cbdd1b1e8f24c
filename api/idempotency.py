"""Idempotent writes (design §17): one mechanism behind the field writes' Idempotency-Key.

A device that lost an answer, or replays a queue of actions after a dead zone,
sends each write again with the same key. The first request's answer (status
and body, success or refusal) is stored with the key, in the same transaction as
the write itself, and every repeat gets exactly that answer back, even if the
task has moved on since. The same key with a different request is 422
`idempotency_key_reused`. Concurrent repeats meet at the unique (owner, key)
index: the second INSERT waits for the first transaction and then finds its
committed answer, so one key makes one effect.

Answers that are not final (429, 5xx: try again later) are not kept, so the
retry is performed for real.

The X-ray uploads (`POST /paramedics/{id}/xray`, `.../xray-uploads`) are the one
exception: what they create is the answer, so the key is kept on the record or the
upload session itself (a unique (paramedic, key) column; xrays.services), and a
repeat answers 200 with that record or session as it is now (`IDEMPOTENT_CREATE`).
Only `idempotency_key` (the key's syntax) is shared.
"""

import hashlib
import json
from collections.abc import Callable
from functools import wraps

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.errors import DATABASE_DOWN, IdempotencyKeyReused
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 128
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description=(
        "Makes the write safe to repeat (1 to 128 printable ASCII characters, kept at "
        "least 48 hours per paramedic): a repeat answers the first answer again, status "
        "and body, with header `Idempotent-Replayed: true`; the same key with another "
        "request is 422 `idempotency_key_reused`."
    ),
)


IDEMPOTENT_CREATE = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description=(
        "Makes the upload safe to repeat (1 to 128 printable ASCII characters, kept with "
        "what it created): a repeat answers 200 with the first record or session; the "
        "same key with another request is 422 `idempotency_key_reused`."
    ),
)


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key: None when absent; 400 when not 1-128 printable
    ASCII characters."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not (0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise ValidationError(
            {HEADER: ["An Idempotency-Key is 1 to 128 printable ASCII characters."]}
        )
    return key


def fingerprint(request) -> str:
    """What makes two requests the same: method, path and body."""
    path = request.path.rstrip("/")
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {path}\n{body}".encode()).hexdigest()


def idempotent(owner: Callable) -> Callable:
    """Decorate a DRF view method so an Idempotency-Key makes it safe to repeat.

    `owner(view, request, **kwargs)` authorises the caller for the object in
    the URL (raising 404 as the view would) and names whose keys these are,
    e.g. "paramedic:<id>": keys are unique per owner.
    """

    def decorator(method):
        @wraps(method)
        def wrapper(view, request, *args, **kwargs):
            key = idempotency_key(request)
            if key is None:
                return method(view, request, *args, **kwargs)
            scope = owner(view, request, **kwargs)
            digest = fingerprint(request)
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        record = IdempotencyRecord.objects.create(
                            owner=scope, key=key, fingerprint=digest, status_code=0
                        )
                except IntegrityError:
                    return _replay(scope, key, digest)
                response = _answer(method, view, request, args, kwargs)
                if not _final(response.status_code):
                    transaction.set_rollback(True)  # forget the key: the retry runs
                    return response
                record.status_code = response.status_code
                record.body = JSONRenderer().render(response.data).decode()
                record.save(update_fields=["status_code", "body"])
                return response

        return wrapper

    return decorator


def _answer(method, view, request, args, kwargs) -> Response:
    """The view's answer, refusals included (as DRF would render them), its writes
    in a savepoint so a refusal leaves only the key's record behind."""
    try:
        with transaction.atomic():
            return method(view, request, *args, **kwargs)
    except DATABASE_DOWN:
        raise
    except Exception as exc:  # DRF's own handling: an error answer, or a re-raise
        return view.handle_exception(exc)


def _final(status: int) -> bool:
    return status < 500 and status != 429


def _replay(owner: str, key: str, digest: str) -> HttpResponse:
    first = IdempotencyRecord.objects.get(owner=owner, key=key)
    if first.fingerprint != digest:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
    replay = HttpResponse(first.body, status=first.status_code, content_type="application/json")
    replay[REPLAYED_HEADER] = "true"
    return replay
