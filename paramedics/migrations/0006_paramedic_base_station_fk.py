# Stations (design §14), step 3 of 3: base_station refers to a station by its code
# (same column, same values; now a foreign key).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('paramedics', '0005_stations_from_base_station'),
    ]

    operations = [
        migrations.AlterField(
            model_name='paramedic',
            name='base_station',
            field=models.ForeignKey(blank=True, db_column='base_station', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='paramedics', to='paramedics.station', to_field='code'),
        ),
    ]
