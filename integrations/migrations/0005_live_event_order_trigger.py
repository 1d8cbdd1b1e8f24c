"""On PostgreSQL, a live event's id is taken under a transaction-level advisory lock and
its NOTIFY queued by a trigger, in the INSERT itself (one round trip instead of three).

The lock makes ids follow commit order (see integrations.live); the column's own
default is drawn before the lock, so the trigger draws the id again under it.
"""

from django.db import migrations

LOCK_KEY = 0x6C697665  # integrations.live.ORDER_LOCK

CREATE = f"""
CREATE FUNCTION integrations_liveevent_order() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    NEW.id := nextval(pg_get_serial_sequence('integrations_liveevent', 'id'));
    PERFORM pg_notify('live_events', NEW.id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER integrations_liveevent_order BEFORE INSERT ON integrations_liveevent
    FOR EACH ROW EXECUTE FUNCTION integrations_liveevent_order();
"""
DROP = """
DROP TRIGGER IF EXISTS integrations_liveevent_order ON integrations_liveevent;
DROP FUNCTION IF EXISTS integrations_liveevent_order();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0004_live_events")]

    operations = [migrations.RunPython(forwards, backwards)]
