"""LiveEvent's paramedic columns get neutral names: integrations/ knows an audience
id, not what a paramedic is (the writing app gives the id its meaning). The table
holds LIVE_RETENTION_HOURS of events, so its two indexes are simply rebuilt."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0006_outbox_delivered_index"),
    ]

    operations = [
        migrations.RemoveIndex("liveevent", "live_paramedic_idx"),
        migrations.RemoveIndex("liveevent", "live_former_idx"),
        migrations.RenameField("liveevent", "paramedic_id", "audience_id"),
        migrations.RenameField("liveevent", "former_paramedic_id", "former_audience_id"),
        migrations.AddIndex(
            "liveevent",
            models.Index(fields=["audience_id", "id"], name="live_audience_idx"),
        ),
        migrations.AddIndex(
            "liveevent",
            models.Index(fields=["former_audience_id", "id"], name="live_former_idx"),
        ),
    ]
