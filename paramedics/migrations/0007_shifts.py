# Shifts (design §14): who is on duty where and when. On PostgreSQL the database
# refuses two overlapping shifts of one paramedic (an exclusion constraint over
# the paramedic and the shift's period, which needs btree_gist for the `=` on a
# uuid); SQLite runs the same migration without it (the service checks there).

import django.db.models.deletion
import uuid
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations, models

EXCLUSION = "shift_assignment_no_overlap"


class BtreeGistOnPostgres(BtreeGistExtension):
    """Django checks the vendor going forwards only; the same migrations run on SQLite."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def add_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE paramedics_shiftassignment ADD CONSTRAINT {EXCLUSION} "
        "EXCLUDE USING gist (paramedic_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)"
    )


def drop_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE paramedics_shiftassignment DROP CONSTRAINT IF EXISTS {EXCLUSION}"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('paramedics', '0006_paramedic_base_station_fk'),
    ]

    operations = [
        BtreeGistOnPostgres(),
        migrations.CreateModel(
            name='Shift',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('starts_at', models.DateTimeField()),
                ('ends_at', models.DateTimeField()),
                ('notes', models.TextField(blank=True, max_length=2000)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('station', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='shifts', to='paramedics.station')),
            ],
            options={
                'ordering': ['starts_at', 'id'],
                'indexes': [models.Index(fields=['station', 'starts_at'], name='shift_station_start_idx'), models.Index(fields=['starts_at', 'ends_at'], name='shift_period_idx')],
                'constraints': [models.CheckConstraint(condition=models.Q(('ends_at__gt', models.F('starts_at'))), name='shift_ends_after_start')],
            },
        ),
        migrations.CreateModel(
            name='ShiftAssignment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('starts_at', models.DateTimeField()),
                ('ends_at', models.DateTimeField()),
                ('released_at', models.DateTimeField(blank=True, null=True)),
                ('paramedic', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='shift_assignments', to='paramedics.paramedic')),
                ('shift', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='paramedics.shift')),
            ],
            options={
                'indexes': [models.Index(fields=['paramedic', 'starts_at', 'ends_at'], name='shift_assignment_period_idx'), models.Index(condition=models.Q(('released_at__isnull', True)), fields=['ends_at'], name='shift_assignment_due_idx')],
                'constraints': [models.UniqueConstraint(fields=('shift', 'paramedic'), name='shift_assignment_unique'), models.CheckConstraint(condition=models.Q(('ends_at__gt', models.F('starts_at'))), name='shift_assignment_ends_after_start')],
            },
        ),
        migrations.AddField(
            model_name='shift',
            name='paramedics',
            field=models.ManyToManyField(blank=True, related_name='shifts', through='paramedics.ShiftAssignment', to='paramedics.paramedic'),
        ),
        migrations.RunPython(add_exclusion, drop_exclusion),
    ]
