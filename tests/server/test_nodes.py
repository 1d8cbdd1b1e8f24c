"""Two web nodes behind HAProxy, sharing PostgreSQL (design §20).

Each node is its own uvicorn process on its own port; HAProxy (Debian's package,
run in the foreground with deploy/haproxy.cfg's settings) spreads the devices over
them. A stream gets the events committed through either node; a node killed with
SIGKILL in the middle of the load loses no event: its devices reconnect through the
balancer with Last-Event-ID and get every event of theirs exactly once.
"""

import itertools
import subprocess
import threading
import time

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from integrations.models import LiveEvent
from tests.balancer import HAPROXY, ROOT, Balancer, Node, node_env
from tests.factories import ParamedicFactory
from tests.helpers import new_task_body
from tests.integrations.workers import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.haproxy, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fleet(tmp_path):
    env = node_env(
        database_url(),
        tmp_path / "cache",
        LIVE_HEARTBEAT_SECONDS="1",
        LIVE_POLL_SECONDS="0.2",
    )
    nodes = [Node(name, env, tmp_path) for name in ("a", "b")]
    balancer = None
    try:
        for node in nodes:
            node.start()
        balancer = Balancer(nodes, tmp_path).start()
        yield nodes, balancer
    finally:
        if balancer:
            balancer.stop()
        for node in nodes:
            node.stop()


def test_the_example_configuration_is_valid():
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


class Device:
    """A paramedic's device: holds its event stream through the balancer, reconnects
    with Last-Event-ID whenever it breaks, and keeps every event id it was sent."""

    def __init__(self, base: str, paramedic):
        self.base = base
        self.paramedic = paramedic
        self.token = str(AccessToken.for_user(paramedic.user))
        self.ids: list[int] = []
        self.last_id: str | None = None
        self.connections = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Device":
        self.thread.start()
        return self

    def _run(self) -> None:
        url = f"{self.base}/api/v1/paramedics/{self.paramedic.id}/events"
        while not self.stopping.is_set():
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                with httpx.stream(
                    "GET", url, headers=headers, timeout=httpx.Timeout(5, read=5)
                ) as response:
                    if response.status_code != 200:
                        time.sleep(0.2)
                        continue
                    self.connections += 1
                    self._read(response)
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    def _read(self, response) -> None:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if self.stopping.is_set():
                return
            if line == "":
                if "id" in fields:
                    self.last_id = fields["id"]
                if "data" in fields and fields.get("event", "").startswith("task."):
                    self.ids.append(int(fields["id"]))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


def expected_ids(paramedic, after: int) -> list[int]:
    """What the paramedic's stream must have been sent: its events in the log."""
    from django.db.models import Q

    return list(
        LiveEvent.objects.filter(
            Q(audience_id=paramedic.id) | Q(former_audience_id=paramedic.id), id__gt=after
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def latest_event_id() -> int:
    return LiveEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_stream_gets_the_events_committed_through_either_node(fleet, supervisor):
    (a, b), balancer = fleet
    paramedic = ParamedicFactory(status="available")
    start = latest_event_id()
    device = Device(balancer.url, paramedic).start()
    try:
        wait_for(lambda: device.connections == 1, 10, "the stream")
        boss = {"Authorization": f"Bearer {AccessToken.for_user(supervisor)}"}
        task = httpx.post(f"{a.url}/api/v1/tasks", json=new_task_body("n-1"), headers=boss)
        assert task.status_code == 201, task.text
        task_id = task.json()["id"]
        assigned = httpx.post(
            f"{a.url}/api/v1/tasks/{task_id}/assign",
            json={"paramedic": str(paramedic.id)},
            headers=boss,
        )
        assert assigned.status_code == 200, assigned.text
        cancelled = httpx.post(
            f"{b.url}/api/v1/tasks/{task_id}/cancel", json={"reason": "test"}, headers=boss
        )
        assert cancelled.status_code == 200, cancelled.text

        wanted = expected_ids(paramedic, start)
        assert len(wanted) == 2  # assigned (through a), cancelled (through b)
        wait_for(lambda: device.ids == wanted, 5, f"events {wanted}, got {device.ids}")
        assert device.connections == 1  # pushed over one stream, through the balancer
    finally:
        device.stop()


def _retrying(call, attempts: int = 20):
    """A device or console repeats a request a dying node dropped (it may have
    committed: every write here is safe to repeat, a repeat's 409 means done)."""
    for _ in range(attempts):
        try:
            response = call()
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if response.status_code in (502, 503, 504):
            time.sleep(0.1)
            continue
        return response
    raise AssertionError("the balancer never answered")


def test_a_node_killed_mid_load_loses_no_event(fleet, supervisor):
    (a, _), balancer = fleet
    paramedics = [ParamedicFactory(status="available") for _ in range(8)]
    start = latest_event_id()
    devices = [Device(balancer.url, p).start() for p in paramedics]
    boss = {"Authorization": f"Bearer {AccessToken.for_user(supervisor)}"}
    http = httpx.Client(base_url=balancer.url, headers=boss, timeout=10)
    try:
        wait_for(lambda: all(d.connections == 1 for d in devices), 15, "every stream")
        rounds = 6
        killed_at = None
        for number, paramedic in enumerate(itertools.chain(*[paramedics] * rounds)):
            if number == len(paramedics) * 2:
                a.kill()  # in the middle of the load, streams and requests on it
                killed_at = time.monotonic()
            body = new_task_body(f"kill-{number}")
            task = _retrying(lambda body=body: http.post("/api/v1/tasks", json=body))
            assert task.status_code in (200, 201), task.text
            task_id = task.json()["id"]
            assign = _retrying(
                lambda task_id=task_id, paramedic=paramedic: http.post(
                    f"/api/v1/tasks/{task_id}/assign", json={"paramedic": str(paramedic.id)}
                )
            )
            assert assign.status_code in (200, 409), assign.text
            cancel = _retrying(
                lambda task_id=task_id: http.post(
                    f"/api/v1/tasks/{task_id}/cancel", json={"reason": "load"}
                )
            )
            assert cancel.status_code in (200, 409), cancel.text
        assert killed_at is not None

        def caught_up() -> bool:
            return all(d.ids == expected_ids(d.paramedic, start) for d in devices)

        wait_for(caught_up, 30, "every device to catch up")
        for device in devices:
            wanted = expected_ids(device.paramedic, start)
            assert len(wanted) == rounds * 2  # assigned and cancelled, each round
            assert device.ids == wanted  # every event, in order, none twice
        # The devices whose streams were on the killed node came back through b.
        assert sum(d.connections > 1 for d in devices) >= 1
    finally:
        http.close()
        for device in devices:
            device.stop()
