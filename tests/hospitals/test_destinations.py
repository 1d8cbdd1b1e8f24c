"""GET /tasks/{id}/destinations: hospitals ranked for a task (design §21)."""

from tests.factories import HospitalFactory, ParamedicFactory, put_on_task
from tests.helpers import API, client_for


def test_it_ranks_by_capability_then_diversion_then_travel_time(db):
    crew = ParamedicFactory()
    # The scene is the factory's 52.52, 13.405.
    task = put_on_task(crew, call_type="stroke")
    far_stroke = HospitalFactory(code="FAR", lat=52.60, lon=13.405, capabilities=["stroke"])
    near_diverted = HospitalFactory(
        code="DIV",
        lat=52.525,
        lon=13.405,
        capabilities=["stroke", "stemi"],
        status="diversion",
        diversion_reason="CT scanner down",
    )
    nearest = HospitalFactory(code="NEAR", lat=52.521, lon=13.405, capabilities=["burns"])

    response = client_for(crew.user).get(f"{API}/tasks/{task.pk}/destinations")

    assert response.status_code == 200, response.content
    ranked = response.json()
    assert [row["hospital"]["id"] for row in ranked] == [
        str(far_stroke.pk),
        str(near_diverted.pk),
        str(nearest.pk),
    ]
    assert [row["rank"] for row in ranked] == [1, 2, 3]
    first, second, third = ranked
    assert (first["capable"], first["diversion"]) == (True, False)
    assert first["reasons"][0] == "has Stroke centre"
    assert "on diversion: CT scanner down" in second["reasons"]
    assert third["reasons"][0] == "lacks Stroke centre, which the call type needs"
    assert first["travel_source"] == "estimate"
    assert first["travel_seconds"] > second["travel_seconds"] > third["travel_seconds"] > 0


def test_without_a_needed_capability_the_nearest_open_one_leads(db):
    crew = ParamedicFactory()
    task = put_on_task(crew, call_type="fall")
    HospitalFactory(code="FAR", lat=52.60, lon=13.405)
    near = HospitalFactory(code="NEAR", lat=52.53, lon=13.405, ed_beds_available=0)
    ranked = client_for(crew.user).get(f"{API}/tasks/{task.pk}/destinations").json()
    assert ranked[0]["hospital"]["id"] == str(near.pk)
    assert ranked[0]["capable"] is True
    assert ranked[0]["reasons"][0] == "open, but reports no emergency beds available"
