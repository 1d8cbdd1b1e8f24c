from .base import ServiceClient


class PatientServiceClient(ServiceClient):
    name = "patient-service"
    url_setting = "PATIENT_SERVICE_URL"

    def fetch_patient(self, patient_id: str, *, idempotency_key: str) -> dict:
        """GET /patients/{patient_id}: the patient's emergency details."""
        return self.request("GET", ("patients", patient_id), idempotency_key=idempotency_key)

    def report_status(self, request_id: str, payload: dict, *, idempotency_key: str) -> dict:
        """POST /emergencies/{request_id}/status: what happened to the request."""
        return self.request(
            "POST",
            ("emergencies", request_id, "status"),
            idempotency_key=idempotency_key,
            json=payload,
        )
