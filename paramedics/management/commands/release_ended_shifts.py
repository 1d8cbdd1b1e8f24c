"""Run the shift-end job once (beat runs it every ROSTER_CHECK_SECONDS; this is for
`make run` without beat, or cron).

    python manage.py release_ended_shifts
"""

from django.core.management.base import BaseCommand

from paramedics.services import roster_release_ended_shifts


class Command(BaseCommand):
    help = "Take available paramedics off duty whose shift has ended (design §14)."

    def handle(self, *args, **options):
        released = roster_release_ended_shifts()
        self.stdout.write(f"{released} paramedic(s) taken off duty after their shift.")
