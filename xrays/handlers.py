"""What delivering an X-ray event to the X-ray Service means (design §8).

Subscribed in XraysConfig.ready(); integrations/ never imports this app.
"""

from integrations.clients import DicomWebClient, XrayServiceClient
from integrations.dicom import CopyRequest
from integrations.models import Destination, OutboxEvent
from integrations.registry import subscribe

from .events import XrayEvent, pacs_copy_description
from .models import XrayImage
from .services import xray_set_pacs, xray_set_service_id


def register_xray(client: XrayServiceClient | DicomWebClient, event: OutboxEvent) -> None:
    """JSON (§8): POST the metadata and keep the service's id. DICOMweb (§15): STOW-RS
    the DICOM copy and keep what the PACS stored."""
    if isinstance(client, DicomWebClient):
        store_in_pacs(client, event)
        return
    # The JSON service gets the metadata of §8; the PACS copy's description is not its.
    metadata = {key: value for key, value in event.payload.items() if key != "pacs_copy"}
    response = client.register(
        {"event_id": str(event.pk), **metadata}, idempotency_key=str(event.pk)
    )
    if response.get("id"):
        xray_set_service_id(xray_id=event.aggregate_id, service_id=str(response["id"]))


def store_in_pacs(client: DicomWebClient, event: OutboxEvent) -> None:
    description = event.payload.get("pacs_copy")
    if description is None:
        # A row recorded before the PACS transport existed: describe the copy now.
        xray = XrayImage.objects.select_related("task", "paramedic").get(pk=event.aggregate_id)
        description = pacs_copy_description(xray)
    stored = client.store(CopyRequest.from_payload(description), idempotency_key=str(event.pk))
    xray_set_pacs(
        xray_id=event.aggregate_id,
        study_uid=stored.study_uid,
        series_uid=stored.series_uid,
        sop_uid=stored.sop_uid,
        retrieve_url=stored.retrieve_url,
    )


def subscribe_all() -> None:
    subscribe(kind=XrayEvent.UPLOADED, destination=Destination.XRAY, handler=register_xray)
