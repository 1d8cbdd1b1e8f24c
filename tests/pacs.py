"""A real PACS for tests: Orthanc with its DICOMweb plugin (Debian packages).

Orthanc has no bind-address option; each instance runs with remote access off
(it answers loopback clients only), authentication on, DICOM and WebDAV off, on a
free port with its own storage directory, and is stopped by its PID.
"""

import atexit
import json
import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.processes import free_port, terminate

ORTHANC = os.environ.get("ORTHANC_BINARY", "/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = os.environ.get(
    "ORTHANC_DICOMWEB_PLUGIN", "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
)
USER, PASSWORD = "paramedic-xray", "pacs-test-password"


def orthanc_missing() -> str | None:
    if not os.path.exists(ORTHANC) or not os.path.exists(DICOMWEB_PLUGIN):
        return (
            "needs Orthanc with DICOMweb: apt-get install -y --no-install-recommends "
            "orthanc orthanc-dicomweb"
        )
    return None


class OrthancServer:
    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir / "orthanc.log"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.root}/dicom-web"

    def config(self) -> dict:
        storage = str(self.data_dir / "db")
        return {
            "Name": "paramedic-test-pacs",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "Plugins": [DICOMWEB_PLUGIN],
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "DicomServerEnabled": False,
            "WebDavEnabled": False,
            "HttpCompressionEnabled": False,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }

    def start(self, timeout: float = 30) -> "OrthancServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "orthanc.json"
        config.write_text(json.dumps(self.config()))
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [ORTHANC, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited early; see {self.log_path}")
            try:
                if self.client().get("/system").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, grace=15)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.root, auth=(USER, PASSWORD), timeout=30)

    def clear(self) -> None:
        """Delete every patient (and so every study) the PACS holds."""
        with self.client() as client:
            for patient in client.get("/patients").json():
                client.delete(f"/patients/{patient}")
