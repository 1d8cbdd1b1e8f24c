"""Stations (design §14), step 2 of 3: every base_station text becomes a station.

Spellings that differ only in case ("North", "north") are one station, as the
`base_station` filter always treated them; its code is the most used spelling
(then the first in sort order), and every paramedic is moved to it. Empty text
becomes NULL. Nothing is lost: each paramedic keeps its station, now a row with
that code (the name starts as the code; the location is unknown until a
supervisor sets it).
"""

from collections import Counter, defaultdict

from django.db import migrations


def stations_from_text(apps, schema_editor):
    Paramedic = apps.get_model("paramedics", "Paramedic")
    Station = apps.get_model("paramedics", "Station")
    Paramedic.objects.filter(base_station="").update(base_station=None)
    spellings = defaultdict(Counter)
    for text in Paramedic.objects.exclude(base_station=None).values_list("base_station", flat=True):
        spellings[text.casefold()][text] += 1
    for counts in spellings.values():
        code = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0][0]
        Station.objects.get_or_create(code=code, defaults={"name": code})
        others = [text for text in counts if text != code]
        if others:
            Paramedic.objects.filter(base_station__in=others).update(base_station=code)


def text_from_stations(apps, schema_editor):
    # The codes stay in the column; only "no station" goes back to "".
    apps.get_model("paramedics", "Paramedic").objects.filter(base_station=None).update(
        base_station=""
    )


class Migration(migrations.Migration):

    dependencies = [
        ('paramedics', '0004_station'),
    ]

    operations = [migrations.RunPython(stations_from_text, text_from_stations)]
