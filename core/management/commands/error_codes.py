"""Write the table of error codes (core.error_codes) as Markdown: `make schema` keeps
docs/error-codes.md from it.

    python manage.py error_codes --file docs/error-codes.md
"""

from pathlib import Path

from django.core.management.base import BaseCommand

from core.error_codes import markdown


class Command(BaseCommand):
    help = "Write the API's error codes as a Markdown table (stdout, or --file)."

    def add_arguments(self, parser):
        parser.add_argument("--file", help="Write here instead of stdout.")

    def handle(self, *args, file: str | None = None, **options):
        text = markdown()
        if file:
            Path(file).write_text(text)
        else:
            self.stdout.write(text, ending="")
