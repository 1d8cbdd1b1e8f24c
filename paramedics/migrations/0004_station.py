# Stations (design §14), step 1 of 3: the table, and base_station may be NULL.

import django.core.validators
import django.db.models.functions.text
import uuid
from django.db import migrations, models

import paramedics.validators


class Migration(migrations.Migration):

    dependencies = [
        ('paramedics', '0003_paramedic_current_task_and_more'),
    ]

    operations = [
        migrations.CreateModel(
            name='Station',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('code', models.CharField(max_length=100, unique=True, validators=[paramedics.validators.validate_station_code])),
                ('name', models.CharField(max_length=200)),
                ('address', models.CharField(blank=True, max_length=300)),
                ('lat', models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(-90), django.core.validators.MaxValueValidator(90)])),
                ('lon', models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(-180), django.core.validators.MaxValueValidator(180)])),
                ('min_staff', models.PositiveSmallIntegerField(default=1, help_text='Paramedics the station needs on shift at every hour.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['code'],
                'constraints': [models.UniqueConstraint(django.db.models.functions.text.Lower('code'), name='station_code_unique_ci'), models.CheckConstraint(condition=models.Q(models.Q(('lat__gte', -90), ('lat__lte', 90)), ('lat__isnull', True), _connector='OR'), name='station_lat_range'), models.CheckConstraint(condition=models.Q(models.Q(('lon__gte', -180), ('lon__lte', 180)), ('lon__isnull', True), _connector='OR'), name='station_lon_range'), models.CheckConstraint(condition=models.Q(models.Q(('lat__isnull', True), ('lon__isnull', True)), models.Q(('lat__isnull', False), ('lon__isnull', False)), _connector='OR'), name='station_location_complete')],
            },
        ),
        migrations.AlterField(
            model_name='paramedic',
            name='base_station',
            field=models.CharField(blank=True, db_index=True, max_length=100, null=True),
        ),
    ]
