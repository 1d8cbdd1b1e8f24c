"""Write the event bus's AsyncAPI 3.0 document: `make schema` (docs/asyncapi.yaml)."""

import yaml
from django.core.management.base import BaseCommand
from drf_spectacular.generators import SchemaGenerator

from integrations.asyncapi import document


class _PlainDumper(yaml.SafeDumper):
    """No anchors and aliases: each schema written out where it is used."""

    def ignore_aliases(self, data):
        return True


def render() -> str:
    api_schema = SchemaGenerator().get_schema(request=None, public=True)
    return yaml.dump(
        document(api_schema), Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=100
    )


class Command(BaseCommand):
    help = "Write the AsyncAPI document of the event bus (design §11)."

    def add_arguments(self, parser):
        parser.add_argument("--file", help="write here instead of standard output")

    def handle(self, *args, file=None, **options):
        text = render()
        if file:
            with open(file, "w", encoding="utf-8") as out:
                out.write(text)
        else:
            self.stdout.write(text, ending="")
