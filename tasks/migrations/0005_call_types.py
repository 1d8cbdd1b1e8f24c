"""Call types with their response plans (design §18), seeded with defaults.

The reasoning of each default is in its `reasoning` field and in design §18. Targets
are minutes from the call to the crew on scene, per priority; the certification is the
least the plan asks for (higher ones qualify).
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TARGETS = [
    django.core.validators.MinValueValidator(1),
    django.core.validators.MaxValueValidator(240),
]

# code, label, default priority, certification, targets (critical, urgent, routine), why
DEFAULT_PLANS = [
    (
        "cardiac_arrest",
        "Cardiac arrest",
        "critical",
        "paramedic",
        (8, 8, 8),
        "Survival falls by about a tenth per minute without CPR and defibrillation: the "
        "nearest crew starts them, a paramedic brings drugs and an advanced airway. 8 "
        "minutes is the usual advanced-life-support target (NFPA 1710) and is kept at "
        "every priority: an arrest is never routine.",
    ),
    (
        "stroke",
        "Stroke",
        "urgent",
        "emt",
        (8, 15, 30),
        "Treatment happens in hospital (thrombolysis, thrombectomy): what counts is a "
        "fast crew that recognises it and transports; any ambulance crew can.",
    ),
    (
        "breathing_problem",
        "Breathing problem",
        "urgent",
        "aemt",
        (8, 12, 30),
        "Oxygen, bronchodilators and a supraglottic airway are within an advanced EMT's "
        "scope; a severe case can deteriorate within minutes.",
    ),
    (
        "major_trauma",
        "Major trauma",
        "critical",
        "paramedic",
        (8, 12, 30),
        "Bleeding control and an airway first, then the trauma centre within the golden "
        "hour: advanced life support, quickly.",
    ),
    (
        "minor_injury",
        "Minor injury",
        "routine",
        "emr",
        (8, 20, 60),
        "First aid and assessment: any crew, the nearest one.",
    ),
    (
        "fall",
        "Fall",
        "routine",
        "emt",
        (8, 20, 60),
        "Mostly older people unable to get up: a long wait on the floor harms, but "
        "rarely within minutes; a crew that can lift and assess.",
    ),
    (
        "interfacility_transfer",
        "Interfacility transfer",
        "routine",
        "emt",
        (15, 30, 60),
        "A patient already under care moved between hospitals: planned, longer targets; "
        "a critical transfer (e.g. to a cath lab) is sent as critical.",
    ),
    (
        "other",
        "Other",
        "urgent",
        "",
        (None, None, None),
        "No type given: no certification asked for, the service's RESPONSE_TARGET_MINUTES.",
    ),
]


def seed(apps, schema_editor):
    CallType = apps.get_model("tasks", "CallType")
    for code, label, priority, certification, targets, reasoning in DEFAULT_PLANS:
        critical, urgent, routine = targets
        CallType.objects.get_or_create(
            code=code,
            defaults={
                "label": label,
                "default_priority": priority,
                "certification": certification,
                "target_critical_minutes": critical,
                "target_urgent_minutes": urgent,
                "target_routine_minutes": routine,
                "reasoning": reasoning,
            },
        )


def backfill_targets(apps, schema_editor):
    """Tasks from before plans were measured against RESPONSE_TARGET_MINUTES."""
    apps.get_model("tasks", "EmergencyTask").objects.update(
        target_minutes=settings.RESPONSE_TARGET_MINUTES
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0004_milestones"),
    ]

    operations = [
        migrations.CreateModel(
            name="CallType",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "code",
                    models.SlugField(help_text="What callers send.", max_length=32, unique=True),
                ),
                ("label", models.CharField(max_length=100)),
                (
                    "default_priority",
                    models.CharField(
                        choices=[
                            ("critical", "Critical"),
                            ("urgent", "Urgent"),
                            ("routine", "Routine"),
                        ],
                        help_text="The priority of a task of this type that names none.",
                        max_length=10,
                    ),
                ),
                (
                    "certification",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("emr", "Emergency Medical Responder"),
                            ("emt", "Emergency Medical Technician"),
                            ("aemt", "Advanced EMT"),
                            ("paramedic", "Paramedic"),
                            ("critical_care", "Critical Care Paramedic"),
                        ],
                        help_text="The least certification the plan asks for (higher ones qualify too); blank: any crew.",
                        max_length=20,
                    ),
                ),
                (
                    "target_critical_minutes",
                    models.PositiveSmallIntegerField(blank=True, null=True, validators=TARGETS),
                ),
                (
                    "target_urgent_minutes",
                    models.PositiveSmallIntegerField(blank=True, null=True, validators=TARGETS),
                ),
                (
                    "target_routine_minutes",
                    models.PositiveSmallIntegerField(
                        blank=True,
                        help_text="Response targets (call to on scene) per priority; blank: RESPONSE_TARGET_MINUTES.",
                        null=True,
                        validators=TARGETS,
                    ),
                ),
                (
                    "reasoning",
                    models.TextField(blank=True, help_text="Why the plan is what it is."),
                ),
            ],
            options={
                "ordering": ["label"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("default_priority__in", ["critical", "urgent", "routine"])
                        ),
                        name="call_type_priority_valid",
                    )
                ],
            },
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.AddField(
            model_name="emergencytask",
            name="call_type",
            field=models.ForeignKey(
                default="other",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="tasks",
                to="tasks.calltype",
                to_field="code",
            ),
        ),
        migrations.AddField(
            model_name="emergencytask",
            name="target_minutes",
            field=models.PositiveSmallIntegerField(null=True),
        ),
        migrations.RunPython(backfill_targets, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="emergencytask",
            name="target_minutes",
            field=models.PositiveSmallIntegerField(
                help_text="The response target its plan gave it on arrival (design §18)."
            ),
        ),
    ]
