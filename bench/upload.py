"""Benchmark X-ray uploads through the service against plain boto3 (design §7).

    .venv/bin/python bench/upload.py [--asgi]

Self-contained, 127.0.0.1 only, stops by itself in a few minutes:

- starts SeaweedFS (tests.s3.SeaweedServer) and a SQLite database in a temp dir,
  migrates it and creates a paramedic with a password and a task assigned to it;
- writes valid DICOM files of about 10 MiB and 190 MiB to disk (190 MiB stays
  under XRAY_MAX_UPLOAD_BYTES = 200 MiB with the multipart overhead);
- per size, starts a fresh gunicorn (production settings, one sync worker, or with
  --asgi the production worker class: uvicorn, `config.asgi_worker.Worker`;
  Celery eager as there is no broker), warms it up with tiny uploads (which
  also give the fixed cost of a request), then RUNS times: streams the file as
  multipart/form-data to POST /api/v1/paramedics/{id}/xray (1 MiB chunks,
  explicit Content-Length) and uploads the same file with plain boto3
  upload_file and the app's TransferConfig (8 MiB parts, 4 threads);
- reports the best time of each, the worker's RSS before and its peak RSS
  (VmHWM, reset with /proc/<pid>/clear_refs before each run; the peak is the
  highest of the runs), the time and sampled RSS while the worker receives the
  body and after it, and how many bytes of file the worker read and wrote per
  byte of upload (/proc/<pid>/io rchar/wchar: read(2)/write(2), not sockets).

The server deduplicates the same image for the same task, so a few bytes of
the pixel data are rewritten with random bytes before each run.

Goals (from the issue): the peak for 190 MiB no more than ~100 MiB above the
10 MiB case; service throughput at least 0.7x plain boto3.
"""

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from common import ROOT, Gunicorn, arm_deadline, children, manage, production_env, tagged

sys.path.insert(0, str(ROOT))

from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer

MIB = 1024 * 1024
# (label, rows, columns) of 16-bit, 1-sample pixel data: rows * columns * 2 bytes.
SIZES = (("10", 2560, 2048), ("190", 12160, 8192))  # 10 MiB and 190 MiB of pixels
RUNS = 3
CHUNK = MIB  # what the client sends per write
PART = 8 * MIB  # the app's TransferConfig
CONCURRENCY = 4
DEADLINE_S = 10 * 60  # hard stop, whatever happens
BADGE = "BENCH-0001"

# Run by `manage.py shell -c`: a service user, a paramedic with a password and
# a task assigned to it. Prints one line the bench parses.
SETUP_SCRIPT = """
import json, os
from django.contrib.auth import get_user_model
from paramedics.services import paramedic_create
from tasks.services import task_assign, task_create
intake = get_user_model().objects.create_user(username="bench-intake")
paramedic = paramedic_create(
    badge_number=os.environ["BENCH_BADGE"], first_name="Bench", last_name="Medic",
    email="bench@ems.example.org", certification_level="paramedic",
    status="available", password=os.environ["BENCH_PASSWORD"],
)
task = task_create(
    request_id="bench-upload-1", patient_id="bench-patient", priority="urgent",
    lat=52.52, lon=13.405, created_by=intake, consultation_id="bench-consult",
).task
task_assign(task_id=task.pk, actor=intake, paramedic_id=paramedic.pk)
print("BENCH_IDS " + json.dumps({"paramedic": str(paramedic.pk), "task": str(task.pk)}))
"""


# --- /proc -----------------------------------------------------------------


def proc_status_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise KeyError(field)


def proc_io(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/io") as handle:
        return {k: int(v) for k, v in (line.split(": ") for line in handle)}


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


# --- environment, database, files ------------------------------------------


def make_env(tmp: Path, server: SeaweedServer) -> dict[str, str]:
    return production_env(
        # Anything that would switch on an outside service stays off.
        (
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "PATIENT_SERVICE_URL",
            "NOTIFICATION_SERVICE_URL",
            "XRAY_SERVICE_URL",
            "DJANGO_DEBUG",
            "MEDIA_ROOT",
            "XRAY_MAX_UPLOAD_BYTES",
        ),
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        S3_BUCKET=server.bucket,
        S3_ENDPOINT_URL=server.endpoint,
        S3_ACCESS_KEY_ID=ACCESS_KEY,
        S3_SECRET_ACCESS_KEY=SECRET_KEY,
        S3_REGION=REGION,
        # Django spools uploads with tempfile: keep them in our temp dir.
        TMPDIR=str(tmp / "spool"),
    )


def dicom_header(rows: int, columns: int, pixel_bytes: int) -> bytes:
    """CT_small.dcm's header resized to rows x columns, up to the PixelData length."""
    import io

    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    for tag in [elem.tag for elem in ds if elem.tag >= 0x7FE00010]:
        del ds[tag]  # PixelData and the trailing padding: written by hand below
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved, 4-byte length.
    return buffer.getvalue() + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes)


def write_dicom(path: Path, rows: int, columns: int) -> int:
    """Write the file in 1 MiB pieces of random pixels; returns the pixel data offset."""
    pixel_bytes = rows * columns * 2
    header = dicom_header(rows, columns, pixel_bytes)
    with open(path, "wb") as handle:
        handle.write(header)
        left = pixel_bytes
        while left:
            piece = min(left, CHUNK)
            handle.write(os.urandom(piece))
            left -= piece
    return len(header)


def make_unique(path: Path, pixel_offset: int) -> None:
    """Change the file's sha256 (the server deduplicates per task) in place."""
    with open(path, "r+b") as handle:
        handle.seek(pixel_offset)
        handle.write(os.urandom(32))


def check_accepted(path: Path) -> str:
    from xrays.validation import inspect_image

    with open(path, "rb") as handle:
        info = inspect_image(handle, path.stat().st_size)
    return f"{info.format} {info.width}x{info.height}"


# --- HTTP ------------------------------------------------------------------


def request_json(port: int, method: str, path: str, body=None, token=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data
    finally:
        conn.close()


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every few milliseconds while an upload runs."""

    def __init__(self, pid: int, every: float = 0.01):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((time.perf_counter(), proc_status_mib(self.pid, "VmRSS")))
            except (OSError, KeyError):
                return
            time.sleep(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, start: float = float("-inf"), end: float = float("inf")) -> float:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0.0)


def upload(port, token, paramedic_id, task_id, path: Path):
    """Stream a multipart body from disk.

    Returns status, body and three perf_counter() stamps: started, the whole body
    handed to the kernel (about when the worker has read it: the socket buffers
    are small), and the response read.
    """
    boundary = "bench-" + uuid.uuid4().hex
    preamble = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="task"\r\n\r\n'
        f"{task_id}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="image"; filename="bench.dcm"\r\n'
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()
    length = len(preamble) + path.stat().st_size + len(closing)

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    try:
        conn.putrequest("POST", f"/api/v1/paramedics/{paramedic_id}/xray")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(length))
        conn.putheader("Accept", "application/json")
        conn.endheaders()
        conn.send(preamble)
        with open(path, "rb") as handle:
            while piece := handle.read(CHUNK):
                conn.send(piece)
        conn.send(closing)
        sent = time.perf_counter()
        response = conn.getresponse()
        body = response.read()
        done = time.perf_counter()
    finally:
        conn.close()
    return response.status, body, started, sent, done


# --- the benchmark ---------------------------------------------------------


def obtain_token(port: int, password: str) -> str:
    status, body = request_json(
        port, "POST", "/api/v1/auth/token/", {"username": BADGE, "password": password}
    )
    if status != 200:
        raise RuntimeError(f"token: HTTP {status} {body[:300]!r}")
    return json.loads(body)["access"]


def boto3_upload(client, path: Path, bucket: str, transfer) -> float:
    key = f"bench/{uuid.uuid4()}.dcm"
    started = time.perf_counter()
    client.upload_file(str(path), bucket, key, Config=transfer)
    elapsed = time.perf_counter() - started
    client.delete_object(Bucket=bucket, Key=key)
    return elapsed


def worker_kind() -> str:
    return "uvicorn (--asgi)" if "--asgi" in sys.argv[1:] else "sync"


def server_for(env, log_path, args) -> Gunicorn:
    """gunicorn with one sync worker, or with --asgi the production ASGI worker."""
    if "--asgi" in sys.argv[1:]:
        args = [*args, "-k", "config.asgi_worker.Worker"]
        return Gunicorn(env, log_path, args, app="config.asgi:application")
    return Gunicorn(env, log_path, args)


def run_size(label, rows, columns, *, tmp, env, ids, password, s3, transfer):
    path = tmp / f"xray-{label}mib.dcm"
    pixel_offset = write_dicom(path, rows, columns)
    size = path.stat().st_size
    accepted = check_accepted(path)
    warm = tmp / "warm-up.dcm"

    server = server_for(env, tmp / f"gunicorn-{label}.log", ["-w", "1", "--timeout", "300"])
    result = {"label": label, "size": size, "accepted": accepted, "service": [], "boto3": []}
    try:
        server.start()
        workers = children(server.process.pid)
        if len(workers) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {workers}")
        pid = workers[0]
        token = obtain_token(server.port, password)
        # Warm-up: the first upload imports pydicom and builds the boto3 client.
        warm_offset = write_dicom(warm, 64, 64)
        make_unique(warm, warm_offset)
        status, body, *_ = upload(server.port, token, ids["paramedic"], ids["task"], warm)
        if status not in (200, 201):
            raise RuntimeError(f"warm-up upload: HTTP {status} {body[:300]!r}")
        # The fixed cost of a request: the same tiny file again (new content each time).
        tiny = []
        for _ in range(RUNS):
            make_unique(warm, warm_offset)
            status, body, started, _, done = upload(
                server.port, token, ids["paramedic"], ids["task"], warm
            )
            if status != 201:
                raise RuntimeError(f"tiny upload: HTTP {status} {body[:300]!r}")
            tiny.append(done - started)
        result["tiny"] = (warm.stat().st_size, min(tiny))
        result["rss_before"] = proc_status_mib(pid, "VmRSS")
        for _ in range(RUNS):
            make_unique(path, pixel_offset)
            rss_start = proc_status_mib(pid, "VmRSS")
            result["hwm_reset"] = reset_peak(pid)
            io_before = proc_io(pid)
            sampler = RssSampler(pid)
            sampler.start()
            try:
                status, body, started, sent, done = upload(
                    server.port, token, ids["paramedic"], ids["task"], path
                )
            finally:
                sampler.stop()
            if status != 201:
                raise RuntimeError(f"upload {label} MiB: HTTP {status} {body[:500]!r}")
            io_after = proc_io(pid)
            peak, rss_end = proc_status_mib(pid, "VmHWM"), proc_status_mib(pid, "VmRSS")
            record = json.loads(body)
            if record["size_bytes"] != size:
                raise RuntimeError(f"stored {record['size_bytes']} bytes, sent {size}")
            result["service"].append(
                {
                    "total": done - started,
                    "send": sent - started,
                    "rss_receiving": sampler.peak(end=sent),
                    "rss_storing": sampler.peak(start=sent),
                    "rchar": (io_after["rchar"] - io_before["rchar"]) / size,
                    "wchar": (io_after["wchar"] - io_before["wchar"]) / size,
                    "rss_start": rss_start,
                    "peak": peak,
                    "rss_end": rss_end,
                }
            )
            result["boto3"].append(boto3_upload(s3, path, env["S3_BUCKET"], transfer))
        # The worker's peak over the runs (VmHWM is reset before each run).
        result["peak"] = max(run["peak"] for run in result["service"])
    except BaseException:
        if server.log_path.exists():
            tail = server.log_path.read_text(errors="replace")[-3000:]
            print(f"--- {server.log_path.name} (tail) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        server.stop()
        path.unlink(missing_ok=True)
        warm.unlink(missing_ok=True)
    return result


def print_report(results) -> None:
    print()
    print(
        "| size MiB | service s | service MiB/s | boto3 s | boto3 MiB/s | service/boto3 "
        "| worker RSS before MiB | worker peak RSS MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        mib = r["size"] / MIB
        service = min(run["total"] for run in r["service"])
        boto = min(r["boto3"])
        r["ratio"] = (mib / service) / (mib / boto)
        print(
            f"| {mib:.1f} | {service:.2f} | {mib / service:.0f} | {boto:.2f} | {mib / boto:.0f} "
            f"| {r['ratio']:.2f}x | {r['rss_before']:.0f} | {r['peak']:.0f} |"
        )
    print()
    print("Where it goes (best run): the worker receiving and spooling the body, then the")
    print("rest (validation, S3 upload, insert); the worker's highest sampled RSS in each")
    print("phase; its file I/O (read(2)/write(2), not sockets) per byte of file:")
    for r in results:
        best = min(r["service"], key=lambda run: run["total"])
        print(
            f"  {r['size'] / MIB:6.1f} MiB: receive {best['send']:.2f} s, RSS <= "
            f"{best['rss_receiving']:.0f} MiB | store {best['total'] - best['send']:.2f} s, "
            f"RSS <= {best['rss_storing']:.0f} MiB | file read {best['rchar']:.2f}x, "
            f"written {best['wchar']:.2f}x | peak - before {r['peak'] - r['rss_before']:+.0f} MiB"
        )
    tiny_size, tiny_s = results[0]["tiny"]
    print(
        f"  fixed cost of one request (a {tiny_size / 1024:.0f} KiB DICOM): {tiny_s * 1000:.0f} ms"
    )
    small, large = results[0], results[-1]
    diff = large["peak"] - small["peak"]
    ratios = ", ".join(
        f"{r['ratio']:.2f}x at {r['size'] / MIB:.0f} MiB "
        f"({'met' if r['ratio'] >= 0.7 else 'NOT met'})"
        for r in results
    )
    print()
    print(
        f"peak RSS {large['size'] / MIB:.0f} MiB vs {small['size'] / MIB:.0f} MiB: "
        f"{diff:+.0f} MiB  (goal: <= ~100 MiB) -> {'met' if diff <= 100 else 'NOT met'}"
    )
    print(f"throughput service/boto3 (goal: >= 0.7x): {ratios}")
    if not all(r["hwm_reset"] for r in results):
        print("note: clear_refs not allowed; the peak includes start-up and warm-up")


def prepare(tmp: Path, seaweed) -> tuple:
    """Start SeaweedFS, migrate a fresh SQLite database and create the paramedic with
    its task; returns (env, password, ids, s3 client, the app's TransferConfig)."""
    seaweed.start()
    env = make_env(tmp, seaweed)
    os.environ.update({k: v for k, v in env.items() if k != "TMPDIR"})
    import django

    django.setup()
    from boto3.s3.transfer import TransferConfig

    manage(env, "migrate", "--noinput", "-v", "0", timeout=180)
    password = secrets.token_urlsafe(24)
    out = manage(
        {**env, "BENCH_BADGE": BADGE, "BENCH_PASSWORD": password},
        "shell",
        "-c",
        SETUP_SCRIPT,
        timeout=180,
    )
    ids = json.loads(tagged(out, "BENCH_IDS"))
    transfer = TransferConfig(
        multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=CONCURRENCY
    )
    return env, password, ids, seaweed.client(), transfer


def main() -> None:
    arm_deadline("bench/upload.py", DEADLINE_S)
    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    (tmp / "spool").mkdir()
    seaweed = SeaweedServer(tmp / "weed", bucket="xrays-bench")
    try:
        env, password, ids, s3, transfer = prepare(tmp, seaweed)
        print(
            f"SeaweedFS {seaweed.endpoint}, gunicorn 1 {worker_kind()} worker (fresh per size), "
            f"SQLite, Celery eager; best of {RUNS} runs; {os.cpu_count()} CPUs"
        )
        results = []
        for label, rows, columns in SIZES:
            r = run_size(
                label,
                rows,
                columns,
                tmp=tmp,
                env=env,
                ids=ids,
                password=password,
                s3=s3,
                transfer=transfer,
            )
            runs = ", ".join(f"{run['total']:.2f}" for run in r["service"])
            boto = ", ".join(f"{t:.2f}" for t in r["boto3"])
            rss = ", ".join(
                f"{run['rss_start']:.0f}->{run['peak']:.0f}->{run['rss_end']:.0f}"
                for run in r["service"]
            )
            print(
                f"{r['size'] / MIB:6.1f} MiB ({r['accepted']}): service {runs} s; boto3 {boto} s; "
                f"worker RSS start->peak->end per run {rss} MiB"
            )
            results.append(r)
        print_report(results)
    finally:
        signal.alarm(0)
        seaweed.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- resumable upload sessions (design §13) ---------------------------------------
#
#     .venv/bin/python bench/upload.py --sessions
#
# The same SeaweedFS, database and DICOM files. Per size: RUNS times, a device's
# upload through a session (sha256 of the file on the device, POST xray-uploads,
# the parts PUT straight to S3 in parallel, CONCURRENCY at a time like boto3's, POST
# complete, which the service answers after joining, hashing and validating the
# object itself), and plain boto3 upload_file of the same file with the app's
# TransferConfig, alternating. The app worker's RSS is sampled while it completes
# (VmHWM reset before each run). Then once for the largest size: the connection is
# cut when half the bytes are out (every part in flight is dropped mid-body), the
# device GETs the session and sends only what is missing; the bytes sent again are
# what the cut parts had sent before the cut.


def sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()


class PartSender:
    """PUTs parts to presigned URLs from the file, CONCURRENCY at a time, counting bytes.

    With `cut_at` set, every connection is dropped mid-body once that many bytes
    of the whole upload have gone out (one link for all of them, as on a phone).
    """

    def __init__(
        self, path: Path, part_size: int, cut_at: int | None = None, parallel: int = CONCURRENCY
    ):
        self.path, self.part_size, self.cut_at, self.parallel = path, part_size, cut_at, parallel
        self.sent = 0
        self.started: list[int] = []
        self.completed: list[int] = []
        self.cut = threading.Event()
        self._lock = threading.Lock()
        self._open: dict[int, socket.socket] = {}

    def _count(self, n: int) -> None:
        with self._lock:
            self.sent += n
            if self.cut_at is not None and self.sent >= self.cut_at and not self.cut.is_set():
                self.cut.set()
                # The link is gone for every connection: parts still sending and parts
                # waiting for their answer alike (storage may not have them yet).
                for sock in self._open.values():
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def put(self, part: dict) -> None:
        from urllib.parse import urlsplit

        if self.cut.is_set():
            return
        url = urlsplit(part["url"])
        with self._lock:
            self.started.append(part["number"])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        try:
            conn.connect()
            if self.cut_at is not None:
                # A small send buffer: bytes handed to the kernel are about bytes sent
                # (on loopback a default buffer swallows most of a part at once).
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
            with self._lock:
                self._open[part["number"]] = conn.sock
            conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
            conn.putheader("Content-Length", str(part["size"]))
            conn.endheaders()
            with open(self.path, "rb") as handle:
                handle.seek((part["number"] - 1) * self.part_size)
                left = part["size"]
                while left:
                    if self.cut.is_set():
                        return  # the link is gone: this part is lost mid-body
                    piece = handle.read(min(CHUNK, left))
                    conn.send(piece)
                    left -= len(piece)
                    self._count(len(piece))
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"part {part['number']}: HTTP {response.status}")
            with self._lock:
                self.completed.append(part["number"])
        except (OSError, http.client.HTTPException):
            if not self.cut.is_set():
                raise  # a real failure, not our cut
        finally:
            with self._lock:
                self._open.pop(part["number"], None)
            conn.close()

    def send(self, parts: list[dict]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            list(pool.map(self.put, parts))


def session_upload(port, token, ids, path: Path, pid: int) -> dict:
    """One device upload through a session; its phases' times and the worker's RSS."""
    started = time.perf_counter()
    digest = sha256_of(path)
    hashed = time.perf_counter()
    status, body = request_json(
        port,
        "POST",
        f"/api/v1/paramedics/{ids['paramedic']}/xray-uploads",
        {"task": ids["task"], "size": path.stat().st_size, "sha256": digest},
        token,
    )
    if status != 201:
        raise RuntimeError(f"create: HTTP {status} {body[:300]!r}")
    session = json.loads(body)
    created = time.perf_counter()
    sender = PartSender(path, session["part_size"])
    sender.send(session["parts"])
    sent = time.perf_counter()
    reset_peak(pid)
    rss_start = proc_status_mib(pid, "VmRSS")
    sampler = RssSampler(pid)
    sampler.start()
    try:
        status, body = request_json(
            port, "POST", f"/api/v1/xray-uploads/{session['id']}/complete", {}, token, 600
        )
    finally:
        sampler.stop()
    done = time.perf_counter()
    if status != 201:
        raise RuntimeError(f"complete: HTTP {status} {body[:300]!r}")
    record = json.loads(body)
    if record["sha256"] != digest or record["size_bytes"] != path.stat().st_size:
        raise RuntimeError("the record does not describe the file sent")
    return {
        "total": done - started,
        "hash": hashed - started,
        "create": created - hashed,
        "parts": sent - created,
        "complete": done - sent,
        "rss_start": rss_start,
        "peak": proc_status_mib(pid, "VmHWM"),
        "sampled_peak": sampler.peak(),
        "parts_count": len(session["parts"]),
    }


def cut_and_resume(port, token, ids, path: Path, parallel: int) -> dict:
    """Drop the link at 50 %, resume from GET, complete; the bytes sent twice."""
    size = path.stat().st_size
    status, body = request_json(
        port,
        "POST",
        f"/api/v1/paramedics/{ids['paramedic']}/xray-uploads",
        {"task": ids["task"], "size": size, "sha256": sha256_of(path)},
        token,
    )
    session = json.loads(body)
    first = PartSender(path, session["part_size"], cut_at=size // 2, parallel=parallel)
    first.send(session["parts"])
    time.sleep(0.5)  # let storage notice the dropped connections
    status, body = request_json(port, "GET", f"/api/v1/xray-uploads/{session['id']}", None, token)
    resumed = json.loads(body)
    held = {p["number"] for p in resumed["received_parts"]}
    missing = [p["number"] for p in resumed["parts"]]
    second = PartSender(path, session["part_size"], parallel=parallel)
    second.send(resumed["parts"])
    status, body = request_json(
        port, "POST", f"/api/v1/xray-uploads/{session['id']}/complete", {}, token, 600
    )
    if status != 201:
        raise RuntimeError(f"complete after resume: HTTP {status} {body[:300]!r}")
    if held & set(missing):
        raise RuntimeError(f"parts storage held were handed out again: {held & set(missing)}")
    if not set(first.completed) <= held:
        raise RuntimeError(f"storage holds {sorted(held)}, answered were {first.completed}")
    return {
        "parallel": parallel,
        "size": size,
        "part_size": session["part_size"],
        "parts": session["part_count"],
        "before_cut": first.sent,
        "held_after_cut": len(held),
        "resent_parts": missing,
        "interrupted": len(set(first.started) - set(first.completed)),
        # Parts whose answer the cut lost although storage had them: GET saved them.
        "unanswered_but_held": len(held - set(first.completed)),
        "after_resume": second.sent,
        "wasted": first.sent + second.sent - size,
    }


def run_sessions_size(label, rows, columns, *, tmp, env, ids, password, s3, transfer):
    path = tmp / f"session-{label}mib.dcm"
    pixel_offset = write_dicom(path, rows, columns)
    server = Gunicorn(env, tmp / f"gunicorn-sessions-{label}.log", ["-w", "1", "--timeout", "600"])
    result = {"label": label, "size": path.stat().st_size, "sessions": [], "boto3": []}
    try:
        server.start()
        pid = children(server.process.pid)[0]
        token = obtain_token(server.port, password)
        warm = tmp / "session-warm.dcm"
        warm_offset = write_dicom(warm, 64, 64)
        make_unique(warm, warm_offset)
        session_upload(server.port, token, ids, warm, pid)  # imports, boto3 client
        result["rss_before"] = proc_status_mib(pid, "VmRSS")
        for _ in range(RUNS):
            make_unique(path, pixel_offset)
            result["sessions"].append(session_upload(server.port, token, ids, path, pid))
            result["boto3"].append(boto3_upload(s3, path, env["S3_BUCKET"], transfer))
        if label == SIZES[-1][0]:
            result["cut"] = []
            for parallel in (CONCURRENCY, 1):
                make_unique(path, pixel_offset)
                result["cut"].append(cut_and_resume(server.port, token, ids, path, parallel))
    except BaseException:
        if server.log_path.exists():
            tail = server.log_path.read_text(errors="replace")[-3000:]
            print(f"--- {server.log_path.name} (tail) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        server.stop()
        path.unlink(missing_ok=True)
    return result


def print_sessions_report(results) -> None:
    print()
    print(
        "| size MiB | session s (device hash + create + parts + complete) | session MiB/s "
        "| boto3 s | boto3 MiB/s | session/boto3 | without device hash | worker RSS before "
        "MiB | worker peak RSS while completing MiB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        mib = r["size"] / MIB
        best = min(r["sessions"], key=lambda run: run["total"])
        boto = min(r["boto3"])
        r["ratio"] = boto / best["total"]
        r["ratio_no_hash"] = boto / (best["total"] - best["hash"])
        peak = max(run["peak"] for run in r["sessions"])
        r["peak"] = peak
        print(
            f"| {mib:.1f} | {best['total']:.2f} ({best['hash']:.2f} + {best['create']:.2f} + "
            f"{best['parts']:.2f} + {best['complete']:.2f}) | {mib / best['total']:.0f} "
            f"| {boto:.2f} | {mib / boto:.0f} | {r['ratio']:.2f}x | {r['ratio_no_hash']:.2f}x "
            f"| {r['rss_before']:.0f} | {peak:.0f} |"
        )
    small, large = results[0], results[-1]
    print()
    print(
        f"worker peak RSS {large['size'] / MIB:.0f} MiB vs {small['size'] / MIB:.0f} MiB: "
        f"{large['peak'] - small['peak']:+.0f} MiB (goal: flat)"
    )
    print(
        f"throughput session/boto3 at {large['size'] / MIB:.0f} MiB (goal >= 0.9x, verify "
        f"included): {large['ratio']:.2f}x with the device's sha256, "
        f"{large['ratio_no_hash']:.2f}x when the device already knows it"
    )
    for cut in large["cut"]:
        print(
            f"cut at 50 % with {cut['parallel']} connection(s) ({cut['before_cut'] / MIB:.0f} "
            f"MiB out, {cut['held_after_cut']} of {cut['parts']} parts held by storage, "
            f"{cut['interrupted']} cut before their answer, {cut['unanswered_but_held']} of "
            f"which storage had): resume sent parts {cut['resent_parts']} "
            f"({cut['after_resume'] / MIB:.1f} MiB); sent twice: {cut['wasted'] / MIB:.1f} MiB "
            f"= {cut['wasted'] / cut['part_size']:.2f} of a {cut['part_size'] / MIB:.0f} MiB "
            f"part; no part storage held was sent again"
        )


def sessions_main() -> None:
    arm_deadline("bench/upload.py --sessions", DEADLINE_S)
    tmp = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    (tmp / "spool").mkdir()
    seaweed = SeaweedServer(tmp / "weed", bucket="xrays-bench")
    try:
        env, password, ids, s3, transfer = prepare(tmp, seaweed)
        print(
            f"SeaweedFS {seaweed.endpoint}, gunicorn 1 sync worker (fresh per size), SQLite; "
            f"parts of {PART // MIB} MiB, {CONCURRENCY} in parallel (boto3: the same); "
            f"best of {RUNS} runs; {os.cpu_count()} CPUs"
        )
        results = []
        for label, rows, columns in SIZES:
            r = run_sessions_size(
                label,
                rows,
                columns,
                tmp=tmp,
                env=env,
                ids=ids,
                password=password,
                s3=s3,
                transfer=transfer,
            )
            runs = ", ".join(f"{run['total']:.2f}" for run in r["sessions"])
            boto = ", ".join(f"{t:.2f}" for t in r["boto3"])
            print(f"{r['size'] / MIB:6.1f} MiB: session {runs} s; boto3 {boto} s")
            results.append(r)
        print_sessions_report(results)
    finally:
        signal.alarm(0)
        seaweed.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if "--sessions" in sys.argv[1:]:
        sessions_main()
    else:
        main()
