"""The outbox in-process: events written with their change, delivered after commit,
retried with backoff, dead after N attempts, retried by a supervisor (design §8).

These run with eager Celery against real HTTP stand-ins on 127.0.0.1; the
same code on RabbitMQ with a real worker is in test_worker.py.
"""

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations import delivery, outbox
from integrations.models import OutboxEvent, OutboxState
from tasks.models import EmergencyTask
from tasks.services import task_assign
from tests.factories import TaskFactory, put_on_task
from tests.helpers import client_for, upload
from tests.integrations.stand_ins import NOTIFICATION, PATIENT, PATIENT_DETAILS, XRAY
from tests.xrays.samples import dicom_bytes


def make_due():
    """Let time pass: every pending row is due now."""
    OutboxEvent.objects.filter(state=OutboxState.PENDING).update(next_attempt_at=timezone.now())


def intake(client, request_id="r-1", patient_id="p-9"):
    return client.post(
        "/api/v1/tasks",
        {
            "request_id": request_id,
            "patient_id": patient_id,
            "priority": "urgent",
            "location": {"lat": 52.5, "lon": 13.4},
        },
        format="json",
    )


class TestWrittenWithTheChange:
    def test_each_change_writes_its_events_in_the_same_transaction(self, paramedic, db):
        task = put_on_task(paramedic)
        kinds = list(
            OutboxEvent.objects.filter(aggregate_id=task.pk)
            .order_by("created_at", "destination")
            .values_list("kind", "destination")
        )
        assert kinds == [
            ("task.created", "patient"),
            ("task.assigned", "notification"),
            ("task.assigned", "patient"),
        ]

    def test_a_refused_change_writes_no_event(self, paramedic, db):
        put_on_task(paramedic)
        task = TaskFactory()
        before = OutboxEvent.objects.count()
        with pytest.raises(Exception, match="not available"):
            task_assign(task_id=task.pk, actor=task.created_by, paramedic_id=paramedic.pk)
        assert OutboxEvent.objects.count() == before

    def test_delivery_is_queued_only_after_commit(
        self, stand_ins, service_user, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = intake(client_for(service_user))
        assert response.status_code == 201
        # The delivery, and (SQLite) the live-event hub's wake-up: nothing before commit.
        assert len(callbacks) == (1 if connection.vendor == "postgresql" else 2)
        assert stand_ins.to(PATIENT) == []
        for callback in callbacks:
            callback()
        assert len(stand_ins.to(PATIENT)) == 1


class TestDelivery:
    def test_intake_fetches_patient_details_for_paramedic_and_supervisor_only(
        self, stand_ins, service_user, supervisor, paramedic, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            task_id = intake(client_for(service_user), patient_id="p-77").json()["id"]

        (call,) = stand_ins.to(PATIENT)
        assert (call.method, call.path) == ("GET", f"{PATIENT}/patients/p-77")
        assert call.headers["Authorization"] == "Bearer integration-secret-token"
        event = OutboxEvent.objects.get(kind="task.created")
        assert call.headers["Idempotency-Key"] == str(event.pk)
        assert event.state == OutboxState.DELIVERED
        assert EmergencyTask.objects.get(pk=task_id).patient_details == PATIENT_DETAILS

        with django_capture_on_commit_callbacks(execute=True):
            task_assign(task_id=task_id, actor=supervisor, paramedic_id=paramedic.pk)
        seen = {
            "supervisor": client_for(supervisor).get(f"/api/v1/tasks/{task_id}").json(),
            "paramedic": client_for(paramedic.user).get(f"/api/v1/tasks/{task_id}").json(),
            "service": client_for(service_user).get(f"/api/v1/tasks/{task_id}").json(),
        }
        assert seen["supervisor"]["patient_details"] == PATIENT_DETAILS
        assert seen["paramedic"]["patient_details"] == PATIENT_DETAILS
        assert seen["service"]["patient_details"] is None
        own_list = client_for(paramedic.user).get(f"/api/v1/paramedics/{paramedic.id}/tasks")
        assert own_list.json()["results"][0]["patient_details"] == PATIENT_DETAILS

    def test_assignment_notifies_and_reports_status_back(
        self, stand_ins, supervisor, paramedic, django_capture_on_commit_callbacks
    ):
        task = TaskFactory(request_id="ps-1")
        with django_capture_on_commit_callbacks(execute=True):
            client_for(supervisor).post(
                f"/api/v1/tasks/{task.id}/assign", {"paramedic": str(paramedic.id)}
            )
        (note,) = stand_ins.to(NOTIFICATION)
        assert note.method == "POST"
        assert note.path == f"{NOTIFICATION}/notifications"
        assert note.body["kind"] == "task.assigned"
        assert note.body["paramedic"]["badge_number"] == paramedic.badge_number
        assert note.body["task_id"] == str(task.id)
        (status,) = [r for r in stand_ins.to(PATIENT) if r.method == "POST"]
        assert status.path == f"{PATIENT}/emergencies/ps-1/status"
        assert status.body["status"] == "assigned"

    def test_xray_upload_registers_with_the_xray_service(
        self, stand_ins, paramedic, django_capture_on_commit_callbacks
    ):
        task = put_on_task(paramedic, consultation_id="c-5")
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(client_for(paramedic.user), paramedic, task, dicom_bytes())
        assert response.status_code == 201
        (call,) = stand_ins.to(XRAY)
        assert call.body["consultation_id"] == "c-5"
        assert call.body["storage"]["key"].startswith("xrays/")
        assert call.body["dicom"]["modality"] == "CT"
        assert "image" not in call.body
        assert "pacs_copy" not in call.body  # only for a PACS (XRAY_SERVICE_KIND=dicomweb)
        from xrays.models import XrayImage

        assert XrayImage.objects.get().xray_service_id.startswith("xr-")

    def test_without_urls_events_are_logged_and_delivered(
        self, paramedic, caplog, django_capture_on_commit_callbacks
    ):
        with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=True):
            put_on_task(paramedic)
        assert set(OutboxEvent.objects.values_list("state", flat=True)) == {"delivered"}
        assert "no URL configured, logged only" in caplog.text


class TestHostileIdentifiers:
    """A value from a client never shapes an outgoing call (design §16)."""

    REQUEST_ID = "x/../../admin/wipe?x="
    PATIENT_ID = "../../internal/secrets?all=1#"

    def _legacy_task(self, **ids):
        # Rows written before the identifier pattern existed (or by hand): the API
        # and the admin refuse these values now, the clients must still be safe.
        task = TaskFactory()
        EmergencyTask.objects.filter(pk=task.pk).update(**ids)
        return EmergencyTask.objects.get(pk=task.pk)

    def test_each_id_stays_one_path_segment(
        self, stand_ins, supervisor, django_capture_on_commit_callbacks
    ):
        task = self._legacy_task(request_id=self.REQUEST_ID, patient_id=self.PATIENT_ID)
        OutboxEvent.objects.all().delete()
        with django_capture_on_commit_callbacks(execute=True):
            outbox.record_event(
                kind="task.created",
                aggregate_type="task",
                aggregate_id=task.pk,
                payload={"patient_id": task.patient_id},
            )
            client_for(supervisor).post(f"/api/v1/tasks/{task.id}/cancel", {"reason": "test"})

        fetch, report = stand_ins.to(PATIENT)
        assert fetch.raw_path == f"{PATIENT}/patients/..%2F..%2Finternal%2Fsecrets%3Fall%3D1%23"
        assert fetch.path == f"{PATIENT}/patients/{self.PATIENT_ID}"
        assert report.raw_path == f"{PATIENT}/emergencies/x%2F..%2F..%2Fadmin%2Fwipe%3Fx%3D/status"
        assert report.method == "POST"
        assert len(stand_ins.requests) == 2  # nothing else was called
        assert set(OutboxEvent.objects.values_list("state", flat=True)) == {"delivered"}

    @pytest.mark.parametrize("hostile", ["..", "."])
    def test_a_dot_segment_is_refused_and_never_sent(self, stand_ins, hostile, db):
        task = self._legacy_task(patient_id=hostile)
        OutboxEvent.objects.all().delete()
        (event,) = outbox.record_event(
            kind="task.created",
            aggregate_type="task",
            aggregate_id=task.pk,
            payload={"patient_id": task.patient_id},
        )
        delivery.deliver(event.pk)

        event.refresh_from_db()
        assert event.state == OutboxState.DEAD
        assert "refused URL path segment" in event.last_error
        assert stand_ins.to(PATIENT) == []

    @pytest.mark.parametrize("field", ["request_id", "patient_id"])
    @pytest.mark.parametrize(
        "value", ["x/../../admin/wipe?x=", "../x", "a b", "a#b", "-leading", "é", "a\nb"]
    )
    def test_the_api_refuses_ids_outside_the_pattern(self, service_user, field, value):
        body = {"request_id": "ok-1", "patient_id": "p-1", field: value}
        response = intake(client_for(service_user), **body)
        assert response.status_code == 400, response.content
        assert response.json()["errors"][field][0]["code"] == "invalid_identifier"
        assert not EmergencyTask.objects.exists()


class TestRetries:
    def test_a_failing_service_is_retried_with_backoff_until_it_answers(
        self, stand_ins, paramedic, django_capture_on_commit_callbacks
    ):
        stand_ins.fail_first[NOTIFICATION] = 2
        with django_capture_on_commit_callbacks(execute=True):
            put_on_task(paramedic)
        event = OutboxEvent.objects.get(destination="notification")
        assert event.state == OutboxState.PENDING
        assert event.attempts == 1
        assert event.last_error == "notification-service: HTTP 503"
        assert event.next_attempt_at > timezone.now()

        assert delivery.relay() == 0  # not due yet: backoff holds
        make_due()
        delivery.relay()
        make_due()
        delivery.relay()

        event.refresh_from_db()
        assert event.state == OutboxState.DELIVERED
        assert event.attempts == 3
        keys = {r.headers["Idempotency-Key"] for r in stand_ins.to(NOTIFICATION)}
        assert keys == {str(event.pk)}  # three tries, one event

    def test_a_permanent_refusal_is_dead_at_once_and_a_supervisor_can_retry(
        self, stand_ins, paramedic, django_capture_on_commit_callbacks
    ):
        stand_ins.status_for[NOTIFICATION] = 422
        with django_capture_on_commit_callbacks(execute=True):
            put_on_task(paramedic)
        event = OutboxEvent.objects.get(destination="notification")
        assert (event.state, event.attempts) == (OutboxState.DEAD, 1)
        assert event.last_error == "notification-service: HTTP 422"

        del stand_ins.status_for[NOTIFICATION]
        with django_capture_on_commit_callbacks(execute=True):
            assert outbox.outbox_retry(event_ids=[event.pk]) == 1
        event.refresh_from_db()
        assert event.state == OutboxState.DELIVERED

    def test_after_max_attempts_the_event_is_dead(
        self, stand_ins, paramedic, settings, django_capture_on_commit_callbacks
    ):
        settings.OUTBOX_MAX_ATTEMPTS = 3
        stand_ins.fail_first[NOTIFICATION] = 100
        with django_capture_on_commit_callbacks(execute=True):
            put_on_task(paramedic)
        for _ in range(5):
            make_due()
            delivery.relay()
        event = OutboxEvent.objects.get(destination="notification")
        assert (event.state, event.attempts) == (OutboxState.DEAD, 3)
        assert len(stand_ins.to(NOTIFICATION)) == 3

    def test_a_claimed_event_is_not_delivered_twice_at_once(self, paramedic, db):
        put_on_task(paramedic)
        event = OutboxEvent.objects.filter(state=OutboxState.PENDING).first()
        assert [e.pk for e in delivery.claim_due(1, only=[event.pk])] == [event.pk]
        assert delivery.claim_due(1, only=[event.pk]) == []  # leased to the first claimer
        assert event.pk not in {e.pk for e in delivery.claim_due(100)}
        assert delivery.deliver(event.pk) == 0  # its after-commit job finds it taken

    @pytest.mark.parametrize("attempts", [1, 2, 5, 30])
    def test_backoff_grows_exponentially_with_jitter_and_a_ceiling(self, settings, attempts):
        settings.OUTBOX_RETRY_BASE_SECONDS = 2
        settings.OUTBOX_RETRY_MAX_SECONDS = 300
        ceiling = min(300, 2 * 2 ** (attempts - 1))
        delays = {delivery.backoff_seconds(attempts) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


class TestReminders:
    def test_one_reminder_per_threshold_not_per_beat(
        self, stand_ins, paramedic, settings, django_capture_on_commit_callbacks
    ):
        from tasks.services import task_change_status, task_send_due_reminders

        task = put_on_task(paramedic)
        waiting = TaskFactory()
        later = timezone.now() + timedelta(minutes=settings.TASK_START_REMINDER_MINUTES + 1)

        with django_capture_on_commit_callbacks(execute=True):
            assert task_send_due_reminders(now=timezone.now()) == 0
            assert task_send_due_reminders(now=later) == 2
            assert task_send_due_reminders(now=later) == 0  # the next beat sends nothing
        reminders = [
            r.body for r in stand_ins.to(NOTIFICATION) if r.body["kind"] == "task.reminder"
        ]
        assert sorted(r["reminder"] for r in reminders) == ["not_started", "unassigned"]
        assert {r["task_id"] for r in reminders} == {str(task.id), str(waiting.id)}

        # Declined and assigned again: a new clock, so a new reminder when it runs out.
        task_change_status(task_id=task.pk, to_status="pending", actor=paramedic.user)
        task_assign(task_id=task.pk, actor=task.created_by, paramedic_id=paramedic.pk)
        much_later = later + timedelta(minutes=settings.TASK_START_REMINDER_MINUTES + 1)
        with django_capture_on_commit_callbacks(execute=True):
            assert task_send_due_reminders(now=much_later) == 1


def test_no_patient_details_or_tokens_reach_the_logs(
    stand_ins, service_user, supervisor, paramedic, caplog, django_capture_on_commit_callbacks
):
    stand_ins.fail_first[NOTIFICATION] = 1
    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        task_id = intake(client_for(service_user)).json()["id"]
        task_assign(task_id=task_id, actor=supervisor, paramedic_id=paramedic.pk)
        client_for(paramedic.user).get(f"/api/v1/tasks/{task_id}")
    text = caplog.text
    for secret in ("Jane Roe", "penicillin", "1961-04-12", "integration-secret-token"):
        assert secret not in text
