"""Every error code the API answers: one registry, the contract clients program against.

An error body is ``{"code", "detail", "errors"?}``. `API_ERRORS` lists each top-level
`code` with its one HTTP status; `FIELD_ERRORS` the codes that appear per field under
`errors` (Django REST framework's own, and the service's). `make schema` writes
docs/error-codes.md from these tables, and the test suite fails when a response
carries a code that is not here, or a top-level code with another status
(tests/contract.py), or when an error class names an unregistered code.

Adding a code: add it here with what a client should do about it, run `make schema`,
and note it in docs/api-changelog.md.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int | None  # None: a field error, under `errors`
    meaning: str


def _table(status: int | None, rows: list[tuple[str, str]]) -> list[ErrorCode]:
    return [ErrorCode(code, status, meaning) for code, meaning in rows]


API_ERRORS: dict[str, ErrorCode] = {
    entry.code: entry
    for entry in [
        *_table(
            400,
            [
                ("invalid", "Invalid input: each field's problems are listed under `errors`."),
                (
                    "parse_error",
                    "The body is not JSON the service reads (syntax, nesting over "
                    "32 levels, NaN, a lone surrogate) or a form it cannot parse.",
                ),
                ("bad_request", "A request Django refused before the API saw it."),
                ("unknown_station", "A `base_station` or `station` code no station has."),
                (
                    "invalid_time",
                    "A device time (`at`) out of bounds: over 2 minutes ahead, "
                    "over 24 h back, before the previous milestone or before the assignment.",
                ),
                ("invalid_last_event_id", "`Last-Event-ID` is not an id this stream sent."),
                (
                    "corrupt_image",
                    "The file claims a format but is truncated or malformed "
                    "(the detail names the problem, e.g. a DICOM tag).",
                ),
                ("empty_file", "The uploaded file (or stored object) has no bytes."),
                ("image_too_large", "The image declares more pixels than the decoder allows."),
                (
                    "part_size_mismatch",
                    "A stored part of a resumable upload has another "
                    "size than its number requires.",
                ),
            ],
        ),
        *_table(
            401,
            [
                ("not_authenticated", "No credentials were sent."),
                (
                    "token_not_valid",
                    "The token is malformed, expired, of the wrong type or "
                    "already spent (a refresh token is spent once).",
                ),
                ("no_active_account", "Wrong username or password, or the account is inactive."),
                (
                    "password_changed",
                    "The password changed since the token was issued: log in again.",
                ),
                ("user_inactive", "The account was deactivated."),
                ("user_not_found", "The token's user no longer exists."),
            ],
        ),
        *_table(
            403,
            [
                ("permission_denied", "The caller's role may not do this."),
                (
                    "field_not_editable",
                    "A paramedic sent a changed value for a field only a "
                    "supervisor may change (listed under `errors`).",
                ),
            ],
        ),
        *_table(
            404,
            [("not_found", "No such object, or one the caller may not know exists.")],
        ),
        *_table(405, [("method_not_allowed", "The route does not take this method.")]),
        *_table(406, [("not_acceptable", "The response cannot be given in the type asked.")]),
        *_table(
            409,
            [
                ("conflict", "The request conflicts with the current state."),
                (
                    "invalid_transition",
                    "The task (or paramedic, or handoff) cannot make this status change "
                    "from its current state.",
                ),
                (
                    "hospital_on_diversion",
                    "The destination hospital is on diversion: send the report again with "
                    "`confirm_diversion: true` to go there anyway (design §21).",
                ),
                (
                    "invalid_milestone",
                    "This milestone is out of order, already recorded, or "
                    "not for the task's state.",
                ),
                ("duplicate", "A record with these values exists (the field under `errors`)."),
                ("duplicate_request_id", "Another caller's task has this `request_id`."),
                (
                    "paramedic_unavailable",
                    "The paramedic is not `available` (on another task or off duty).",
                ),
                ("paramedic_not_found", "The body names a paramedic that does not exist."),
                ("no_available_paramedic", "No available paramedic could be assigned."),
                ("not_on_shift", "`available` outside a shift while ROSTER_REQUIRES_SHIFT is on."),
                (
                    "shift_overlap",
                    "A paramedic would be in two overlapping shifts (the detail names the clash).",
                ),
                ("upload_closed", "The upload session was aborted or expired."),
                ("upload_finished", "The upload session completed or failed: nothing more to do."),
                ("upload_completing", "Another request is completing this upload session."),
                ("upload_incomplete", "Parts are missing from storage (listed under `errors`)."),
                ("parts_mismatch", "The parts listed do not match what storage holds."),
            ],
        ),
        *_table(
            413,
            [
                ("file_too_large", "The X-ray (or part) is larger than allowed."),
                ("request_too_large", "The request body is larger than allowed."),
                ("part_too_large", "A part's body is larger than that part may be."),
            ],
        ),
        *_table(415, [("unsupported_media_type", "Not DICOM, PNG or JPEG by its content.")]),
        *_table(
            422,
            [
                ("idempotency_key_reused", "This Idempotency-Key was used for another request."),
                ("checksum_mismatch", "The stored bytes do not hash to the declared sha256."),
                ("size_mismatch", "The stored object's size is not the declared size."),
            ],
        ),
        *_table(
            429,
            [
                ("throttled", "Too many requests: wait for Retry-After."),
                (
                    "too_many_upload_sessions",
                    "The paramedic holds XRAY_UPLOAD_MAX_OPEN_SESSIONS "
                    "open upload sessions: complete or abort one first.",
                ),
            ],
        ),
        *_table(500, [("server_error", "A fault in the service; the detail says nothing more.")]),
        *_table(
            503,
            [
                (
                    "database_unavailable",
                    "The database is down: retry after Retry-After with the "
                    "same Idempotency-Key or request_id.",
                ),
                ("storage_unavailable", "File storage is down or refused the write: retry."),
                ("service_unavailable", "A dependency is down: retry shortly."),
            ],
        ),
    ]
}

FIELD_ERRORS: dict[str, ErrorCode] = {
    entry.code: entry
    for entry in _table(
        None,
        [
            # Django REST framework's own.
            ("required", "The field is missing."),
            ("null", "The field may not be null."),
            ("blank", "The field (or query parameter) may not be empty."),
            ("invalid", "The value is not of the documented type or format."),
            ("max_length", "Longer than `maxLength` (counted as sent, before trimming)."),
            ("min_length", "Shorter than `minLength`."),
            ("max_value", "Above the maximum."),
            ("min_value", "Below the minimum."),
            ("invalid_choice", "Not one of the documented values."),
            ("not_a_list", "A list was expected."),
            ("empty", "The list may not be empty."),
            ("overflow", "A time outside what UTC can hold."),
            ("null_characters_not_allowed", "The text holds a NUL character."),
            ("surrogate_characters_not_allowed", "The text holds a lone UTF-16 surrogate."),
            ("does_not_exist", "No object with this id."),
            ("incorrect_type", "An id of the wrong type."),
            ("read_only", "Only a supervisor may change this field."),
            # The service's.
            (
                "invalid_identifier",
                "`request_id`/`patient_id`: letters, digits, `.`, `_`, "
                "`:`, `-`, starting with a letter or digit.",
            ),
            ("invalid_badge_number", "Not a badge number (letters, digits, `-`)."),
            ("invalid_phone", "Not a phone number (E.164-like)."),
            ("invalid_station_code", "Not a station code."),
            ("invalid_sha256", "Not a sha256 in hexadecimal."),
            ("invalid_time", "A device time out of bounds (see the top-level code)."),
            ("future_timestamp", "A location's `recorded_at` in the future."),
            (
                "invalid_window",
                "`until` not after `since`, or the window longer than LOCATION_WINDOW_MAX_HOURS.",
            ),
            ("duplicate", "Listed twice in one request."),
            ("duplicate_badge_number", "Another paramedic has this badge number."),
            ("duplicate_email", "Another paramedic has this email."),
            ("duplicate_code", "Another station has this code."),
            ("unknown_station", "No station has this code."),
            ("unknown_paramedic", "No paramedic has this id."),
            ("unknown_call_type", "No call type has this code (design §18)."),
            ("unknown_hospital", "No hospital has this id (design §21)."),
            ("ends_before_start", "`ends_at` is not after `starts_at`."),
            ("shift_too_long", "A shift lasts at most 24 h."),
            ("shift_overlap", "The paramedic is in an overlapping shift."),
            ("missing", "These parts are not in storage yet."),
        ],
    )
}

# Domain refusals that never reach a client: raised to an integration's handler, which
# ends the outbox event with the reason.
NOT_ANSWERED: dict[str, str] = {
    "patient_details_rejected": "The Patient Service's details are too large to keep.",
}


def markdown() -> str:
    """docs/error-codes.md: both tables, by status then code."""
    lines = [
        "# Error codes",
        "",
        "Generated from `core/error_codes.py` by `make schema`; do not edit by hand.",
        "",
        'Every error is JSON: `{"code": ..., "detail": ..., "errors": {field: [{code, '
        "message}]}}` (`errors` only for field problems). Program against `code`; "
        "`detail` is for people.",
        "",
        "## Codes (`code`)",
        "",
        "| status | code | meaning |",
        "|---|---|---|",
    ]
    for entry in sorted(API_ERRORS.values(), key=lambda e: (e.status, e.code)):
        lines.append(f"| {entry.status} | `{entry.code}` | {entry.meaning} |")
    lines += [
        "",
        "## Field codes (under `errors`)",
        "",
        "| code | meaning |",
        "|---|---|",
    ]
    for entry in sorted(FIELD_ERRORS.values(), key=lambda e: e.code):
        lines.append(f"| `{entry.code}` | {entry.meaning} |")
    return "\n".join(lines) + "\n"
