"""Reading X-ray records: lists with a constant number of queries."""

from tests.factories import put_on_task
from tests.helpers import client_for, upload
from tests.xrays.samples import image_bytes


def test_list_query_count_is_constant(supervisor, paramedic, django_assert_num_queries):
    task = put_on_task(paramedic)
    client = client_for(paramedic.user)
    for i in range(3):
        upload(client, paramedic, task, image_bytes("PNG", color=(i, 0, 0)))
    supervisor_client = client_for(supervisor)
    # The JWT user (with its paramedic), its groups (role check), the paramedic
    # named in the URL, the page (not full: it is its own count).
    with django_assert_num_queries(4):
        first = supervisor_client.get(f"/api/v1/paramedics/{paramedic.id}/xrays")
    for i in range(3, 15):
        upload(client, paramedic, task, image_bytes("PNG", color=(i, 0, 0)))
    with django_assert_num_queries(4):
        second = supervisor_client.get(f"/api/v1/paramedics/{paramedic.id}/xrays")
    assert (first.json()["count"], second.json()["count"]) == (3, 15)
