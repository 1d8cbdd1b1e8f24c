"""The cast and the world of the security tests (design §4).

Roles:

    anonymous        no Authorization header
    supervisor       staff user in `supervisors`
    service          the service that created the world's tasks
    other_service    another service account
    doctor           user in `doctors`
    own_paramedic    paramedic A, the paramedic named in every URL
    other_paramedic  paramedic B, acting on A's URL or A's task/X-ray
    hospital         staff of hospital H (group `hospitals`), the world's `hospital`

"Own/other" therefore means: for /paramedics/{id}/... the `{id}` is A, so A
acts on its own URL and B on someone else's; for /tasks/{id} and /xrays/{id}
the object is A's task or X-ray (created by `service`).
"""

import hashlib
import io
import time
from datetime import timedelta
from functools import cached_property
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core import signing
from django.utils import timezone

from core.roles import SERVICES
from hospitals.handoffs import handoff_send
from hospitals.models import Handoff
from paramedics.models import Paramedic, Shift, Station
from paramedics.services import location_fixes_record
from tasks.models import EmergencyTask, TaskStatus
from tasks.services import task_change_status, task_record_milestone
from tests.factories import (
    HospitalFactory,
    ParamedicFactory,
    TaskFactory,
    UserFactory,
    put_on_task,
    shift_for,
    staff_of,
)
from tests.helpers import Caller, upload
from tests.xrays.samples import image_bytes
from xrays.downloads import TOKEN_SALT, download_link
from xrays.models import XrayImage, XrayUploadSession
from xrays.multipart import LocalMultipart
from xrays.part_tokens import part_url
from xrays.sessions import upload_session_create


class World:
    """Fresh state for one request (see the module docstring for the cast).

    task        created by `service`, assigned to A
    other_task  created by `other_service`, assigned to B
    pending     created by `service`, still pending (for /assign)
    spare       available with a fresh location: the only candidate
    trails      A's and B's location trails, a fix each (made on first use)
    station     A's and B's station; shift: A's shift, running now (made on first use)
    xray        A's X-ray of `task`; other_xray: B's of `other_task` (made on first use),
                with the bytes `xray_content` and `other_xray_content`
    """

    xray_content = image_bytes("PNG", color=(10, 20, 30))
    other_xray_content = image_bytes("PNG", color=(40, 50, 60))
    upload_content = image_bytes("PNG", color=(90, 100, 110))

    def __init__(self, users, paramedic, other_paramedic, service, other_service):
        self.users = users
        self.paramedic = paramedic
        self.other_paramedic = other_paramedic
        self.task = put_on_task(paramedic, created_by=service)
        self.other_task = put_on_task(other_paramedic, created_by=other_service)
        self.pending = TaskFactory(created_by=service)
        self.spare = ParamedicFactory(
            badge_number="B-SPARE",
            last_lat=52.521,
            last_lon=13.41,
            last_location_at=timezone.now(),
        )
        self.hospital = users["hospital"].hospital_staff.hospital
        self.other_hospital = HospitalFactory(code="H-OTHER")
        paramedic.refresh_from_db()
        other_paramedic.refresh_from_db()

    # Handoffs (design §21): A's task started and reported to `hospital`, B's to
    # `other_hospital`; `arrived_handoff` is A's after the at_destination milestone.
    REPORT = {"acuity": "urgent", "age_years": 40, "sex": "male", "chief_complaint": "Fall",
              "stable": True}  # fmt: skip

    def _report(self, who: Paramedic, task: EmergencyTask, hospital) -> Handoff:
        task_change_status(task_id=task.pk, to_status=TaskStatus.IN_PROGRESS, actor=who.user)
        return handoff_send(
            task_id=task.pk, paramedic_id=who.pk, hospital_id=hospital.pk, report=self.REPORT
        )

    @cached_property
    def handoff(self) -> Handoff:
        return self._report(self.paramedic, self.task, self.hospital)

    @cached_property
    def other_handoff(self) -> Handoff:
        return self._report(self.other_paramedic, self.other_task, self.other_hospital)

    @cached_property
    def arrived_handoff(self) -> Handoff:
        handoff = self.handoff
        task_record_milestone(
            task_id=self.task.pk, milestone="at_destination", actor=self.paramedic.user
        )
        handoff.refresh_from_db()
        return handoff

    @cached_property
    def task_started(self) -> EmergencyTask:
        return task_change_status(
            task_id=self.task.pk, to_status=TaskStatus.IN_PROGRESS, actor=self.paramedic.user
        )

    @cached_property
    def station(self) -> Station:
        return Station.objects.get(code="North")  # the factory's station of A and B

    @cached_property
    def shift(self) -> Shift:
        """A's shift, running now at A's station."""
        now = timezone.now()
        return shift_for(
            self.paramedic,
            station=self.station,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=7),
        )

    @cached_property
    def trails(self) -> None:
        """A's and B's location trails: a fix each, a minute ago."""
        at = timezone.now() - timedelta(minutes=1)
        for who, lat in ((self.paramedic, 1.0), (self.other_paramedic, 2.0)):
            location_fixes_record(paramedic=who, fixes=[{"lat": lat, "lon": 0, "at": at}])

    @staticmethod
    def _upload(who: Paramedic, task: EmergencyTask, content: bytes) -> XrayImage:
        response = upload(Caller(who.user), who, task, content, name="scan.png")
        assert response.status_code == 201, response.content
        return XrayImage.objects.get(pk=response.json()["id"])

    @cached_property
    def xray(self) -> XrayImage:
        return self._upload(self.paramedic, self.task, self.xray_content)

    @cached_property
    def other_xray(self) -> XrayImage:
        return self._upload(self.other_paramedic, self.other_task, self.other_xray_content)

    # Download tokens for /xrays/{id}/file (filesystem mode, design §7).
    @property
    def valid_token(self) -> str:
        url = download_link(self.xray).url  # what GET /xrays/{id} hands out
        return parse_qs(urlsplit(url).query)["token"][0]

    @property
    def expired_token(self) -> str:
        issued = time.time() - settings.XRAY_DOWNLOAD_URL_SECONDS - 60
        with mock.patch("django.core.signing.time.time", return_value=issued):
            return signing.dumps(str(self.xray.pk), salt=TOKEN_SALT)

    @property
    def tampered_token(self) -> str:
        token = self.valid_token
        return token[:-1] + ("A" if token[-1] != "A" else "B")

    @property
    def other_xray_token(self) -> str:
        """A valid token, but for B's X-ray."""
        return signing.dumps(str(self.other_xray.pk), salt=TOKEN_SALT)

    # Resumable uploads (design §13), filesystem mode: part 1 already sent.
    def _open_session(self, who: Paramedic, task: EmergencyTask) -> XrayUploadSession:
        content = self.upload_content
        session = upload_session_create(
            paramedic=who,
            task_id=task.pk,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            created_by=who.user,
        ).session
        LocalMultipart().write_part(
            session.storage_upload_id, 1, io.BytesIO(content), len(content), len(content)
        )
        return session

    @cached_property
    def upload_session(self) -> XrayUploadSession:
        return self._open_session(self.paramedic, self.task)

    @cached_property
    def other_upload_session(self) -> XrayUploadSession:
        return self._open_session(self.other_paramedic, self.other_task)

    @staticmethod
    def _part_token(session: XrayUploadSession, seconds: int = 300) -> str:
        url = part_url(session=session, number=1, seconds=seconds)
        return parse_qs(urlsplit(url).query)["token"][0]

    @property
    def part_token(self) -> str:
        return self._part_token(self.upload_session)

    @property
    def expired_part_token(self) -> str:
        with mock.patch("django.core.signing.time.time", return_value=time.time() - 120):
            return self._part_token(self.upload_session, seconds=60)

    @property
    def other_part_token(self) -> str:
        """A valid part token, but for B's session."""
        return self._part_token(self.other_upload_session)


@pytest.fixture
def other_service(db):
    return UserFactory(username="other-service", groups=[SERVICES])


@pytest.fixture
def hospital_user(db):
    return staff_of(HospitalFactory(code="H-OWN"), "ed-own")


@pytest.fixture
def users(
    supervisor, service_user, other_service, doctor, paramedic, other_paramedic, hospital_user
):
    return {
        "anonymous": None,
        "supervisor": supervisor,
        "service": service_user,
        "other_service": other_service,
        "doctor": doctor,
        "own_paramedic": paramedic.user,
        "other_paramedic": other_paramedic.user,
        "hospital": hospital_user,
    }


@pytest.fixture
def world(users, paramedic, other_paramedic, service_user, other_service):
    return World(users, paramedic, other_paramedic, service_user, other_service)
