"""The hospital board in the console (design §21)."""

from django.urls import reverse

from hospitals.handoffs import handoff_send
from hospitals.models import Handoff, HandoffState
from tasks.models import TaskStatus
from tasks.services import task_change_status
from tests.factories import HospitalFactory, ParamedicFactory, put_on_task, staff_of

BOARD = reverse("admin:hospitals_board")
REPORT = {"acuity": "emergent", "age_years": 64, "sex": "male",
          "chief_complaint": "Chest pain", "stable": False}  # fmt: skip


def reported(hospital) -> Handoff:
    crew = ParamedicFactory()
    task = put_on_task(crew)
    task_change_status(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=crew.user)
    return handoff_send(
        task_id=task.pk, paramedic_id=crew.pk, hospital_id=hospital.pk, report=REPORT
    )


def test_the_board_shows_each_hospital_and_who_is_coming(
    console_client, db, django_assert_num_queries
):
    cath = HospitalFactory(code="CATH", name="Cath Centre", capabilities=["stemi"])
    HospitalFactory(code="QUIET", status="diversion", diversion_reason="no beds")
    handoff = reported(cath)
    reported(cath)
    # Session, user, its groups (supervisor check), active handoffs, hospitals, the
    # user's and its groups' permissions (the admin's sidebar).
    with django_assert_num_queries(7):
        html = console_client.get(BOARD).content.decode()
    assert html.count('data-state="sent"') == 2
    assert "Chest pain" in html and "no beds" in html and "Nobody on the way." in html

    response = console_client.post(reverse("admin:hospitals_board_acknowledge", args=[handoff.pk]))
    assert response.status_code == 302
    handoff.refresh_from_db()
    assert handoff.state == HandoffState.ACKNOWLEDGED
    # Offloading before arrival is refused with the reason, nothing changes.
    console_client.post(reverse("admin:hospitals_board_offload", args=[handoff.pk]))
    handoff.refresh_from_db()
    assert handoff.state == HandoffState.ACKNOWLEDGED


def test_only_supervisors_see_the_board(client, db):
    staff = staff_of(HospitalFactory(), "ed-board")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    assert client.get(BOARD).status_code == 403
