"""Call types and their response plans (design §18): seeded defaults, intake with a
`call_type`, the target a plan gives a task, and the admin where plans are edited."""

import pytest

from tasks.models import CallType, EmergencyTask
from tasks.services import call_types_ensure_defaults
from tests.factories import TaskFactory
from tests.helpers import client_for

SEEDED = {
    "cardiac_arrest",
    "stroke",
    "breathing_problem",
    "major_trauma",
    "minor_injury",
    "fall",
    "interfacility_transfer",
    "other",
}


def intake_body(**overrides):
    body = {
        "request_id": "ps-plan-1",
        "patient_id": "p-1",
        "priority": "urgent",
        "location": {"lat": 52.5170, "lon": 13.3889},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


@pytest.fixture
def service_client(service_user):
    return client_for(service_user)


def test_the_defaults_are_seeded_each_with_its_reasoning(db):
    plans = {plan.code: plan for plan in CallType.objects.all()}
    assert set(plans) == SEEDED
    assert all(plan.reasoning for plan in plans.values())
    arrest = plans["cardiac_arrest"]
    assert (arrest.default_priority, arrest.certification) == ("critical", "paramedic")
    assert arrest.qualified_levels == ["paramedic", "critical_care"]
    assert plans["other"].qualified_levels is None


def test_missing_defaults_are_put_back_and_edited_ones_left_alone(db):
    CallType.objects.filter(code__in=["fall", "other"]).delete()
    CallType.objects.filter(code="stroke").update(target_urgent_minutes=12)

    assert call_types_ensure_defaults() == 2
    assert call_types_ensure_defaults() == 0

    assert set(CallType.objects.values_list("code", flat=True)) == SEEDED
    assert CallType.objects.get(code="stroke").target_urgent_minutes == 12
    assert CallType.objects.get(code="fall").target_minutes("urgent") == 20


def test_intake_without_a_call_type_never_fails_for_want_of_the_default(service_client):
    CallType.objects.filter(code="other").delete()  # as a flush between tests does

    response = service_client.post("/api/v1/tasks", intake_body())

    assert response.status_code == 201
    assert CallType.objects.get(code="other").label == "Other"


class TestIntake:
    def test_it_takes_the_plans_priority_and_target(self, service_client):
        response = service_client.post(
            "/api/v1/tasks", intake_body(priority=None, call_type="cardiac_arrest")
        )

        assert response.status_code == 201, response.content
        data = response.json()
        assert (data["call_type"], data["priority"], data["target_minutes"]) == (
            "cardiac_arrest",
            "critical",
            8,
        )

    def test_a_given_priority_picks_the_plans_target_for_it(self, service_client):
        response = service_client.post(
            "/api/v1/tasks", intake_body(priority="routine", call_type="stroke")
        )

        assert (response.json()["priority"], response.json()["target_minutes"]) == ("routine", 30)

    def test_without_a_call_type_it_is_other_with_the_service_target(
        self, service_client, settings
    ):
        settings.RESPONSE_TARGET_MINUTES = 11
        response = service_client.post("/api/v1/tasks", intake_body())

        data = response.json()
        assert (data["call_type"], data["priority"], data["target_minutes"]) == (
            "other",
            "urgent",
            11,
        )

    @pytest.mark.parametrize("code", ["heartburn", "CARDIAC_ARREST", ""])
    def test_an_unknown_call_type_is_refused_with_a_code(self, service_client, code):
        response = service_client.post("/api/v1/tasks", intake_body(call_type=code))

        assert response.status_code == 400
        errors = response.json()["errors"]["call_type"]
        assert errors[0]["code"] in ("unknown_call_type", "blank")
        assert not EmergencyTask.objects.exists()

    def test_a_call_type_of_the_wrong_type_is_invalid(self, service_client):
        response = service_client.post("/api/v1/tasks", intake_body(call_type=5), format="json")

        assert response.status_code == 400
        assert response.json()["errors"]["call_type"][0]["code"] == "invalid"

    def test_without_priority_or_call_type_priority_is_required(self, service_client):
        response = service_client.post("/api/v1/tasks", intake_body(priority=None))

        assert response.status_code == 400
        assert response.json()["errors"]["priority"][0]["code"] == "required"

    def test_editing_a_plan_leaves_earlier_tasks_target_alone(self, db):
        earlier = TaskFactory(call_type="fall", priority="urgent")
        CallType.objects.filter(code="fall").update(target_urgent_minutes=45)
        later = TaskFactory(call_type="fall", priority="urgent")

        earlier.refresh_from_db()
        assert (earlier.target_minutes, later.target_minutes) == (20, 45)


class TestAdmin:
    URL = "/admin/tasks/calltype/"

    def test_supervisors_edit_a_plan_but_not_its_code(self, console_client):
        plan = CallType.objects.get(code="stroke")

        page = console_client.get(f"{self.URL}{plan.pk}/change/")
        assert page.status_code == 200
        assert "code" in page.context["adminform"].readonly_fields
        response = console_client.post(
            f"{self.URL}{plan.pk}/change/",
            {
                "code": "renamed",
                "label": "Stroke (FAST positive)",
                "default_priority": "critical",
                "certification": "paramedic",
                "target_critical_minutes": "7",
                "target_urgent_minutes": "",
                "target_routine_minutes": "30",
                "reasoning": "Local protocol.",
            },
        )

        assert response.status_code == 302, response.context["adminform"].errors
        plan.refresh_from_db()
        assert (plan.code, plan.certification, plan.target_urgent_minutes) == (
            "stroke",
            "paramedic",
            None,
        )
        assert plan.target_minutes("urgent") == 9  # RESPONSE_TARGET_MINUTES

    def test_nobody_deletes_a_plan(self, console_client):
        plan = CallType.objects.get(code="other")
        assert console_client.get(f"{self.URL}{plan.pk}/delete/").status_code == 403

    def test_a_paramedic_sees_no_plans(self, client, paramedic):
        client.force_login(paramedic.user)
        assert client.get(self.URL).status_code == 302  # to the admin login
