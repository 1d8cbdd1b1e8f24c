"""Role x endpoint matrix for the X-ray endpoints (DESIGN §4, §7)."""

import pytest

from tests.conftest import client_for
from tests.factories import put_on_task
from tests.xrays.samples import image_bytes
from tests.xrays.test_upload import upload
from xrays.models import XrayImage

ROLES = ["anonymous", "supervisor", "service", "doctor", "self", "other_paramedic"]


@pytest.fixture
def xray(paramedic):
    task = put_on_task(paramedic)
    response = upload(client_for(paramedic.user), paramedic, task, image_bytes("PNG"))
    assert response.status_code == 201
    return XrayImage.objects.get(pk=response.json()["id"])


EXPECTED = {
    "upload": dict(
        anonymous=401, supervisor=201, service=403, doctor=403, self=201, other_paramedic=404
    ),
    "list": dict(
        anonymous=401, supervisor=200, service=403, doctor=200, self=200, other_paramedic=404
    ),
    "retrieve": dict(
        anonymous=401, supervisor=200, service=403, doctor=200, self=200, other_paramedic=404
    ),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_it_enforces_role_matrix(role_users, paramedic, xray, role, endpoint):
    client = client_for(role_users[role])
    if endpoint == "upload":
        response = upload(client, paramedic, xray.task, image_bytes("JPEG"))
    elif endpoint == "list":
        response = client.get(f"/api/v1/paramedics/{paramedic.id}/xrays")
    else:
        response = client.get(f"/api/v1/xrays/{xray.id}")

    assert response.status_code == EXPECTED[endpoint][role], response.content
    body = response.json()
    if response.status_code >= 400:
        assert {"code", "detail"} <= body.keys()
        assert XrayImage.objects.count() == 1
    elif endpoint == "list":
        assert [x["id"] for x in body["results"]] == [str(xray.id)]
    elif endpoint == "retrieve":
        assert body["download_url"]
        assert body["download_url_expires_at"]


def test_a_paramedic_never_sees_another_paramedics_xrays(paramedic, other_paramedic, xray):
    client = client_for(other_paramedic.user)
    mine = client.get(f"/api/v1/paramedics/{other_paramedic.id}/xrays").json()
    assert mine["count"] == 0


def test_read_only_fields_cannot_be_set_on_upload(paramedic_client, paramedic):
    task = put_on_task(paramedic)
    forged = {
        "sha256": "0" * 64,
        "size_bytes": "1",
        "format": "dicom",
        "paramedic": "00000000-0000-0000-0000-000000000000",
    }
    response = upload(paramedic_client, paramedic, task, image_bytes("PNG"), **forged)
    assert response.status_code == 201
    data = response.json()
    assert data["sha256"] != "0" * 64
    assert data["format"] == "png"
    assert data["paramedic"] == str(paramedic.id)


def test_list_query_count_is_constant(supervisor, paramedic, django_assert_max_num_queries):
    task = put_on_task(paramedic)
    client = client_for(paramedic.user)
    for i in range(3):
        upload(client, paramedic, task, image_bytes("PNG", color=(i, 0, 0)))
    supervisor_client = client_for(supervisor)
    # Expected: user, groups, the paramedic (scope), COUNT(*), the page.
    with django_assert_max_num_queries(5):
        first = supervisor_client.get(f"/api/v1/paramedics/{paramedic.id}/xrays")
    for i in range(3, 15):
        upload(client, paramedic, task, image_bytes("PNG", color=(i, 0, 0)))
    with django_assert_max_num_queries(5):
        second = supervisor_client.get(f"/api/v1/paramedics/{paramedic.id}/xrays")
    assert (first.json()["count"], second.json()["count"]) == (3, 15)
