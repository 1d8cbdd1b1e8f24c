"""Upload sessions in the supervisor console (design §13): state, parts received, age."""

import hashlib
import io

import pytest
from django.urls import reverse

from tests.factories import put_on_task
from tests.helpers import client_for
from xrays.multipart import LocalMultipart
from xrays.sessions import upload_session_create

CHANGELIST = reverse("admin:xrays_xrayuploadsession_changelist")


def open_session(paramedic, task, *, parts_sent: int, size: int = 3000, part_size: int = 1000):
    content = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    session = upload_session_create(
        paramedic=paramedic,
        task_id=task.pk,
        size=size,
        sha256=hashlib.sha256(content).hexdigest(),
        created_by=paramedic.user,
    ).session
    for number in range(1, parts_sent + 1):
        piece = content[(number - 1) * part_size : number * part_size]
        LocalMultipart().write_part(
            session.storage_upload_id, number, io.BytesIO(piece), len(piece), part_size
        )
    return session


@pytest.fixture
def small_parts(settings):
    settings.XRAY_UPLOAD_PART_BYTES = 1000


def test_supervisors_see_state_parts_received_and_age(console_client, paramedic, small_parts):
    task = put_on_task(paramedic)
    session = open_session(paramedic, task, parts_sent=2)

    listing = console_client.get(CHANGELIST).content.decode()
    assert str(session.pk) in listing
    assert "2 of 3" in listing  # what storage holds, not what the device claims
    assert "Uploading" in listing
    assert "minute" in listing  # age, e.g. "0 minutes"

    detail = console_client.get(
        reverse("admin:xrays_xrayuploadsession_change", args=[session.pk])
    ).content.decode()
    assert "2 of 3" in detail and session.sha256 in detail


# The changelist: session, user, its groups (supervisor check), COUNT(*) filtered and
# unfiltered, the user's and its groups' permissions, the page with paramedic and
# task joined, the first/last date and the days for the date hierarchy; SAVEPOINT and
# RELEASE around the counts. Parts received come from storage, not the database.
SESSION_LIST_QUERIES = 10 + 2


def test_the_list_costs_the_same_queries_for_any_number_of_sessions(
    console_client, paramedic, small_parts, django_assert_num_queries
):
    task = put_on_task(paramedic)
    open_session(paramedic, task, parts_sent=1)
    with django_assert_num_queries(SESSION_LIST_QUERIES):
        console_client.get(CHANGELIST)
    for _ in range(5):
        open_session(paramedic, task, parts_sent=1)
    with django_assert_num_queries(SESSION_LIST_QUERIES):
        assert console_client.get(CHANGELIST).status_code == 200


def test_others_do_not_see_the_sessions(client, paramedic, doctor, small_parts):
    client.force_login(paramedic.user)
    assert client.get(CHANGELIST).status_code == 302  # to the login page
    assert client_for(doctor).get(CHANGELIST).status_code == 302
