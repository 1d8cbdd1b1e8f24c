"""Create the role groups of DESIGN §4 (supervisors, services, doctors)."""

from django.db import migrations

ROLE_GROUPS = ("supervisors", "services", "doctors")
# Supervisors run the roster from the admin: give the group the model permissions.
SUPERVISOR_MODELS = ("paramedic",)


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)
    supervisors = Group.objects.get(name="supervisors")
    for model in SUPERVISOR_MODELS:
        content_type, _ = ContentType.objects.get_or_create(app_label="paramedics", model=model)
        for action in ("add", "change", "view"):
            permission, _ = Permission.objects.get_or_create(
                content_type=content_type,
                codename=f"{action}_{model}",
                defaults={"name": f"Can {action} {model}"},
            )
            supervisors.permissions.add(permission)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("paramedics", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
