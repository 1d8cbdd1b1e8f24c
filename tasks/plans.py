"""The seeded call types and their response plans (design §18, where the table
explains them). Targets are minutes from the call to the crew on scene per priority
(None: RESPONSE_TARGET_MINUTES); the certification is the least the plan asks for
(higher ones qualify; blank: any crew). The capability is what the destination
hospital needs for the patient (design §21; blank: any emergency department).

Used by the migration that seeds them and by `call_types_ensure_defaults`, which puts
back a missing one (a database flushed since, as transactional tests do).
"""

DEFAULT_PLANS: list[dict] = [
    {
        "code": "cardiac_arrest",
        "capability": "stemi",
        "label": "Cardiac arrest",
        "default_priority": "critical",
        "certification": "paramedic",
        "targets": (8, 8, 8),
        "reasoning": (
            "Survival falls by about a tenth per minute without CPR and defibrillation: the "
            "nearest crew starts them, a paramedic brings drugs and an advanced airway. 8 "
            "minutes is the usual advanced-life-support target (NFPA 1710) and is kept at "
            "every priority: an arrest is never routine."
        ),
    },
    {
        "code": "stroke",
        "capability": "stroke",
        "label": "Stroke",
        "default_priority": "urgent",
        "certification": "emt",
        "targets": (8, 15, 30),
        "reasoning": (
            "Treatment happens in hospital (thrombolysis, thrombectomy): what counts is a "
            "fast crew that recognises it and transports; any ambulance crew can."
        ),
    },
    {
        "code": "breathing_problem",
        "label": "Breathing problem",
        "default_priority": "urgent",
        "certification": "aemt",
        "targets": (8, 12, 30),
        "reasoning": (
            "Oxygen, bronchodilators and a supraglottic airway are within an advanced EMT's "
            "scope; a severe case can deteriorate within minutes."
        ),
    },
    {
        "code": "major_trauma",
        "capability": "trauma_1",
        "label": "Major trauma",
        "default_priority": "critical",
        "certification": "paramedic",
        "targets": (8, 12, 30),
        "reasoning": (
            "Bleeding control and an airway first, then the trauma centre within the golden "
            "hour: advanced life support, quickly."
        ),
    },
    {
        "code": "minor_injury",
        "label": "Minor injury",
        "default_priority": "routine",
        "certification": "emr",
        "targets": (8, 20, 60),
        "reasoning": "First aid and assessment: any crew, the nearest one.",
    },
    {
        "code": "fall",
        "label": "Fall",
        "default_priority": "routine",
        "certification": "emt",
        "targets": (8, 20, 60),
        "reasoning": (
            "Mostly older people unable to get up: a long wait on the floor harms, but "
            "rarely within minutes; a crew that can lift and assess."
        ),
    },
    {
        "code": "interfacility_transfer",
        "label": "Interfacility transfer",
        "default_priority": "routine",
        "certification": "emt",
        "targets": (15, 30, 60),
        "reasoning": (
            "A patient already under care moved between hospitals: planned, longer targets; "
            "a critical transfer (e.g. to a cath lab) is sent as critical."
        ),
    },
    {
        "code": "other",
        "label": "Other",
        "default_priority": "urgent",
        "certification": "",
        "targets": (None, None, None),
        "reasoning": (
            "No type given: no certification asked for, the service's RESPONSE_TARGET_MINUTES."
        ),
    },
]


def plan_fields(plan: dict) -> dict:
    """A plan as CallType field values (all but `code`)."""
    critical, urgent, routine = plan["targets"]
    return {
        "label": plan["label"],
        "default_priority": plan["default_priority"],
        "certification": plan["certification"],
        "target_critical_minutes": critical,
        "target_urgent_minutes": urgent,
        "target_routine_minutes": routine,
        "reasoning": plan["reasoning"],
        "capability": plan.get("capability", ""),
    }
