"""Call types with their response plans (design §18), seeded with the defaults of
tasks.plans (whose reasoning is in each plan and in design §18)."""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from tasks.plans import DEFAULT_PLANS, plan_fields

TARGETS = [
    django.core.validators.MinValueValidator(1),
    django.core.validators.MaxValueValidator(240),
]

def fields_then(plan: dict) -> dict:
    # The plan's fields this migration knows (capability came with 0006).
    fields = plan_fields(plan)
    fields.pop("capability")
    return fields


def seed(apps, schema_editor):
    CallType = apps.get_model("tasks", "CallType")
    for plan in DEFAULT_PLANS:
        CallType.objects.get_or_create(code=plan["code"], defaults=fields_then(plan))


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
