"""A handoff as a FHIR R4 Bundle (design §21): what a hospital's systems import.

A `collection` Bundle of: a Patient with no identity beyond sex (administrative
gender); an Observation of the estimated age (LOINC 30525-0); an emergency Encounter
at the hospital, its status following the handoff's state; an Observation per vital
sign the crew measured (LOINC codes, UCUM units, category vital-signs); a Condition
for the chief complaint (with stable or unstable as its note); a Procedure per
treatment given. Resources refer to each other by `urn:uuid:` full URLs, derived from
the handoff's id so the same handoff gives the same Bundle.
"""

import uuid

from .models import Acuity, Handoff, HandoffState

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# Vital sign -> (LOINC code, display, UCUM unit); blood pressure is one panel.
VITAL_CODES = {
    "pulse": ("8867-4", "Heart rate", "/min"),
    "resp_rate": ("9279-1", "Respiratory rate", "/min"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "temperature_c": ("8310-5", "Body temperature", "Cel"),
    "gcs": ("9269-2", "Glasgow coma score total", "{score}"),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_SYSTOLIC = ("8480-6", "Systolic blood pressure", "mm[Hg]")
BP_DIASTOLIC = ("8462-4", "Diastolic blood pressure", "mm[Hg]")
AGE = ("30525-0", "Age", "a")

ENCOUNTER_STATUS = {
    HandoffState.SENT: "planned",
    HandoffState.ACKNOWLEDGED: "planned",
    HandoffState.ARRIVED: "arrived",
    HandoffState.OFFLOADED: "finished",
    HandoffState.CANCELLED: "cancelled",
    HandoffState.REDIRECTED: "cancelled",
}
PRIORITY = {
    Acuity.RESUSCITATION: ("EM", "emergency"),
    Acuity.EMERGENT: ("EM", "emergency"),
    Acuity.URGENT: ("UR", "urgent"),
    Acuity.LESS_URGENT: ("R", "routine"),
    Acuity.NON_URGENT: ("R", "routine"),
}


def _concept(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _quantity(value, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def handoff_bundle(handoff: Handoff) -> dict:
    """The handoff as a FHIR R4 Bundle (a JSON-ready dict)."""

    def urn(name: str) -> str:
        return f"urn:uuid:{uuid.uuid5(handoff.pk, name)}"

    patient, encounter = urn("patient"), urn("encounter")
    effective = (handoff.arrived_at or handoff.sent_at).isoformat()
    entries: list[tuple[str, dict]] = []

    def observation(name: str, code: tuple, **value) -> None:
        entries.append(
            (
                urn(f"observation-{name}"),
                {
                    "resourceType": "Observation",
                    "status": "preliminary",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": OBSERVATION_CATEGORY,
                                    "code": "vital-signs",
                                    "display": "Vital Signs",
                                }
                            ]
                        }
                    ],
                    "code": _concept(LOINC, code[0], code[1]),
                    "subject": {"reference": patient},
                    "encounter": {"reference": encounter},
                    "effectiveDateTime": effective,
                    **value,
                },
            )
        )

    entries.append((patient, {"resourceType": "Patient", "gender": handoff.sex}))
    code, display = PRIORITY[handoff.acuity]
    entries.append(
        (
            encounter,
            {
                "resourceType": "Encounter",
                "status": ENCOUNTER_STATUS[handoff.state],
                "class": {"system": ACT_CODE, "code": "EMER", "display": "emergency"},
                "priority": _concept(ACT_PRIORITY, code, display),
                "subject": {"reference": patient},
                "serviceProvider": {
                    "identifier": {
                        "system": "urn:paramedic:hospital",
                        "value": handoff.hospital.code,
                    },
                    "display": handoff.hospital.name,
                },
                "period": {"start": handoff.arrived_at.isoformat()}
                if handoff.arrived_at
                else {"start": handoff.eta.isoformat()},
            },
        )
    )
    observation("age", AGE, valueQuantity=_quantity(handoff.age_years, AGE[2]))
    if handoff.bp_systolic is not None:
        observation(
            "bp",
            BP_PANEL,
            component=[
                {
                    "code": _concept(LOINC, loinc[0], loinc[1]),
                    "valueQuantity": _quantity(value, loinc[2]),
                }
                for loinc, value in (
                    (BP_SYSTOLIC, handoff.bp_systolic),
                    (BP_DIASTOLIC, handoff.bp_diastolic),
                )
            ],
        )
    for name, loinc in VITAL_CODES.items():
        value = getattr(handoff, name)
        if value is not None:
            observation(name, loinc, valueQuantity=_quantity(value, loinc[2]))
    entries.append(
        (
            urn("condition"),
            {
                "resourceType": "Condition",
                "clinicalStatus": _concept(CONDITION_CLINICAL, "active", "Active"),
                "verificationStatus": _concept(
                    CONDITION_VERIFICATION, "provisional", "Provisional"
                ),
                "category": [
                    _concept(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
                ],
                "code": {"text": handoff.chief_complaint},
                "subject": {"reference": patient},
                "encounter": {"reference": encounter},
                "note": [{"text": "stable" if handoff.stable else "unstable"}],
            },
        )
    )
    for number, treatment in enumerate(handoff.treatments, start=1):
        entries.append(
            (
                urn(f"procedure-{number}"),
                {
                    "resourceType": "Procedure",
                    "status": "completed",
                    "code": {"text": treatment},
                    "subject": {"reference": patient},
                    "encounter": {"reference": encounter},
                },
            )
        )
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{handoff.pk}"},
        "type": "collection",
        "timestamp": handoff.updated_at.isoformat(),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }
