"""A 200 MB DICOM study to a real PACS with flat worker memory (design §7, §15).

Everything real: the upload through the API into S3 (SeaweedFS), a Celery worker on
RabbitMQ and PostgreSQL delivering the outbox row, and Orthanc receiving the STOW.
The worker's peak resident memory (VmHWM) is read from /proc before and after.
"""

import time
from pathlib import Path

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.celery_app import app as celery_app
from integrations.models import OutboxEvent, OutboxState
from tests.factories import put_on_task
from tests.helpers import client_for
from tests.integrations.workers import CeleryProcesses, broker_url, use_broker
from tests.pacs import PASSWORD, USER
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY
from tests.xrays.samples import dicom_bytes
from xrays.models import XrayImage

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.rabbitmq,
    pytest.mark.s3,
    pytest.mark.pacs,
    pytest.mark.django_db(transaction=True),
]

MB = 1024 * 1024
# 10000 x 10000 16-bit pixels: 200,000,000 bytes of pixel data, under the 200 MiB limit.
SIDE = 10_000


def big_cr(path: Path) -> Path:
    """A real CR header (pydicom-data) over 200 MB of pixels, written in 1 MB steps."""
    dataset = pydicom.dcmread(pydicom.data.get_testdata_file("RG1_UNCR.dcm", download=False))
    del dataset.PixelData
    dataset.Rows = dataset.Columns = SIDE
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = (
        pydicom.uid.generate_uid()
    )
    length = SIDE * SIDE * 2
    with path.open("wb") as handle:
        dataset.save_as(handle, enforce_file_format=True)
        handle.write(b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little"))
        row = bytes(range(256)) * (MB // 256)
        for _ in range(length // MB):
            handle.write(row)
        handle.write(row[: length % MB])
    return path


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def worker(pacs, s3_storage, tmp_path):
    processes = CeleryProcesses(
        tmp_path,
        {
            "XRAY_SERVICE_KIND": "dicomweb",
            "XRAY_SERVICE_URL": pacs.dicomweb,
            "XRAY_SERVICE_USER": USER,
            "XRAY_SERVICE_PASSWORD": PASSWORD,
            "S3_BUCKET": s3_storage.bucket,
            "S3_ENDPOINT_URL": s3_storage.endpoint,
            "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "S3_REGION": REGION,
            "OUTBOX_LEASE_SECONDS": "120",
        },
    )
    saved = {k: celery_app.conf[k] for k in ("task_always_eager", "broker_url")}
    saved["queue"] = celery_app.conf["task_default_queue"]
    use_broker(celery_app, broker_url(), processes.queue)
    yield processes.start_worker()
    processes.stop_all()
    use_broker(celery_app, saved["broker_url"] or "memory://", saved["queue"])
    celery_app.conf.task_always_eager = saved["task_always_eager"]


def upload_file(paramedic, task, path: Path):
    with path.open("rb") as handle:
        image = SimpleUploadedFile("study.dcm", handle.read())
    response = client_for(paramedic.user).post(
        f"/api/v1/paramedics/{paramedic.id}/xray",
        {"image": image, "task": str(task.id)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return XrayImage.objects.get(pk=response.json()["id"])


def wait_delivered(xray: XrayImage, timeout: float = 300) -> OutboxEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = OutboxEvent.objects.get(aggregate_id=xray.pk, destination="xray")
        if event.state != OutboxState.PENDING or event.last_error:
            return event
        time.sleep(0.3)
    raise AssertionError("the X-ray event was not delivered in time")


def test_a_200_mb_study_reaches_the_pacs_with_flat_worker_memory(worker, pacs, paramedic, tmp_path):
    process = worker
    task = put_on_task(paramedic, consultation_id="consult-big", patient_id="patient-big")

    # Warm up: a small study loads every module the delivery uses.
    small = tmp_path / "small.dcm"
    small.write_bytes(dicom_bytes("RG1_UNCR.dcm"))
    event = wait_delivered(upload_file(paramedic, task, small))
    assert event.state == OutboxState.DELIVERED, event.last_error
    warm = peak_rss_mb(process.pid)

    path = big_cr(tmp_path / "big.dcm")
    size = path.stat().st_size
    assert 200_000_000 < size < 209_715_200
    started = time.monotonic()
    xray = upload_file(paramedic, task, path)
    path.unlink()
    event = wait_delivered(xray)
    elapsed = time.monotonic() - started
    assert event.state == OutboxState.DELIVERED, event.last_error
    peak = peak_rss_mb(process.pid)
    print(  # noqa: T201 - the measurement, for bench/README.md
        f"\n200 MB STOW: file {size / MB:.0f} MiB, worker peak RSS {warm:.0f} -> {peak:.0f} MiB,"
        f" upload + delivery {elapsed:.1f} s"
    )
    # The worker held far less than the study at any moment.
    assert peak - warm < 40, (warm, peak)

    xray.refresh_from_db()
    with pacs.client() as client:
        found = client.get(
            "/dicom-web/instances",
            params={"AccessionNumber": "consult-big", "SOPInstanceUID": xray.pacs_sop_uid},
        ).json()
        assert len(found) == 1
        assert found[0]["00100020"]["Value"] == ["patient-big"]
        (orthanc_id,) = client.post("/tools/lookup", content=xray.pacs_sop_uid.encode()).json()
        stored = client.get(f"/instances/{orthanc_id['ID']}/statistics").json()
    # What the PACS holds is the original's size give or take the coerced header.
    assert abs(int(stored["DiskSize"]) - size) < 4096
