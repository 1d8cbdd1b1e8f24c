# The location trail (design §20): one row per fix, keyed by (paramedic, at). On
# PostgreSQL the table is partitioned by day on `at`, with a DEFAULT partition for
# days not created yet (core.partitions; beat's job creates days ahead and drops
# those past LOCATION_RETENTION_DAYS). SQLite gets the plain table and an index on
# `at` for its batched purge.

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

TABLE = "paramedics_locationfix"
POSTGRES_COLUMNS = """
    paramedic_id uuid NOT NULL
        REFERENCES paramedics_paramedic (id) DEFERRABLE INITIALLY DEFERRED,
    at timestamp with time zone NOT NULL,
    received_at timestamp with time zone NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    accuracy_m double precision NULL,
    speed_mps double precision NULL,
    heading_deg double precision NULL,
    CONSTRAINT location_fix_lat_range CHECK (lat >= -90 AND lat <= 90),
    CONSTRAINT location_fix_lon_range CHECK (lon >= -180 AND lon <= 180),
    PRIMARY KEY (paramedic_id, at)
"""


def create_table(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE TABLE {TABLE} ({POSTGRES_COLUMNS}) PARTITION BY RANGE (at)")
        # core.partitions.DEFAULT_SUFFIX
        schema_editor.execute(f"CREATE TABLE {TABLE}_pdefault PARTITION OF {TABLE} DEFAULT")
        return
    schema_editor.create_model(apps.get_model("paramedics", "LocationFix"))
    schema_editor.execute(f"CREATE INDEX location_fix_at_idx ON {TABLE} (at)")


def drop_table(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TABLE {TABLE}")  # its partitions go with it
        return
    schema_editor.delete_model(apps.get_model("paramedics", "LocationFix"))


class Migration(migrations.Migration):

    dependencies = [
        ('paramedics', '0007_shifts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.CreateModel(
            name='LocationFix',
            fields=[
                ('pk', models.CompositePrimaryKey('paramedic_id', 'at', blank=True, editable=False, primary_key=True, serialize=False)),
                ('at', models.DateTimeField()),
                ('received_at', models.DateTimeField()),
                ('lat', models.FloatField(validators=[django.core.validators.MinValueValidator(-90), django.core.validators.MaxValueValidator(90)])),
                ('lon', models.FloatField(validators=[django.core.validators.MinValueValidator(-180), django.core.validators.MaxValueValidator(180)])),
                ('accuracy_m', models.FloatField(blank=True, null=True)),
                ('speed_mps', models.FloatField(blank=True, null=True)),
                ('heading_deg', models.FloatField(blank=True, null=True)),
                ('paramedic', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='location_fixes', to='paramedics.paramedic')),
            ],
            options={
                'ordering': ['paramedic_id', 'at'],
                'constraints': [models.CheckConstraint(condition=models.Q(('lat__gte', -90), ('lat__lte', 90)), name='location_fix_lat_range'), models.CheckConstraint(condition=models.Q(('lon__gte', -180), ('lon__lte', 180)), name='location_fix_lon_range')],
            },
        )],
        ),
        # After the state has the model, so SQLite's schema editor can build it.
        migrations.RunPython(create_table, drop_table),
    ]
