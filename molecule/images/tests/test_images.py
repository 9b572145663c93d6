"""State checks for the images scenario.

The scenario's only instance is this machine's Docker engine (delegated
driver, local connection), so the services' published ports on 127.0.0.1
are reached directly from the test process.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest

IMAGE_USER = "65532:65532"
UID = GID = "65532"
# A static binary on scratch: about 7 MB with the standard library alone;
# the PostgreSQL driver (pgx) adds about 4 MB. Anything near the budget
# means something else came along.
MAX_IMAGE_BYTES = 15_000_000  # 15 MB
READY_TIMEOUT = 60

# Requests go straight to 127.0.0.1, never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def scenario(host):
    return host.ansible.get_variables()


def inspect(host, kind, ref):
    return json.loads(host.check_output("docker %s inspect %s", kind, ref))[0]


@pytest.fixture(params=["invoice_app", "payment_provider"])
def service(request, host, scenario):
    """The container of one service and the image it runs, inspected afresh:
    payment_run restarts the containers, which changes their PIDs."""
    container = inspect(host, "container", scenario["images_test_containers"][request.param]["name"])
    image = inspect(host, "image", container["Image"])
    return {"key": request.param, "container": container, "image": image}


def call(method, url, body=None):
    """Return (status, content type, decoded JSON body)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with HTTP.open(req, timeout=15) as resp:
            return resp.status, resp.headers.get_content_type(), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), json.loads(err.read())


def base_url(host, name, port):
    container = inspect(host, "container", name)
    binding = container["NetworkSettings"]["Ports"][f"{port}/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"


def wait_ready(url):
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if call("GET", f"{url}/readyz")[0] == 200:
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url}/readyz did not answer 200 within {READY_TIMEOUT}s")
        time.sleep(1)


@pytest.fixture(scope="module")
def urls(host, scenario):
    services = scenario["platform_services"]
    names = scenario["images_test_containers"]
    result = {key: base_url(host, names[key]["name"], services[key]["port"]) for key in services}
    for url in result.values():
        wait_ready(url)
    return result


@pytest.fixture(scope="module")
def payment_run(host, scenario):
    """Pay the invoices once, from a known start.

    Both services keep their state in PostgreSQL, whose data is on a tmpfs:
    restarting the database and then the services brings back three unpaid
    invoices and an empty payment ledger; the test then holds on every rerun.
    """
    names = scenario["images_test_containers"]
    services = scenario["platform_services"]
    host.check_output("docker restart %s", names["postgres"]["name"])
    host.check_output("docker restart %s %s", names["payment_provider"]["name"], names["invoice_app"]["name"])
    invoice_app = base_url(host, names["invoice_app"]["name"], services["invoice_app"]["port"])
    provider = base_url(host, names["payment_provider"]["name"], services["payment_provider"]["port"])
    wait_ready(provider)
    wait_ready(invoice_app)
    before = call("GET", f"{invoice_app}/invoices")
    pay = call("POST", f"{invoice_app}/invoices/pay", b"")
    after = call("GET", f"{invoice_app}/invoices")
    return {"before": before, "pay": pay, "after": after, "provider": provider}


# --- the images and the containers --------------------------------------


def test_image_user_is_numeric_non_root(service):
    assert service["image"]["Config"]["User"] == IMAGE_USER


def test_image_is_at_most_15_mb(service):
    size = service["image"]["Size"]
    assert size <= MAX_IMAGE_BYTES, f"{service['image']['RepoTags']} is {size} bytes"


def test_container_runs_as_its_image_user(service):
    container = service["container"]
    assert container["State"]["Running"] is True
    # No --user override: the container's user is the image's.
    assert container["Config"]["User"] == service["image"]["Config"]["User"] == IMAGE_USER


def test_process_runs_as_uid_65532(host, service):
    pid = service["container"]["State"]["Pid"]
    assert pid > 0
    status = host.file(f"/proc/{pid}/status").content_string
    uids = re.search(r"^Uid:\s+(.*)$", status, re.MULTILINE).group(1).split()
    gids = re.search(r"^Gid:\s+(.*)$", status, re.MULTILINE).group(1).split()
    # real, effective, saved and filesystem IDs
    assert uids == [UID] * 4
    assert gids == [GID] * 4


def test_root_filesystem_is_read_only(host, service):
    container = service["container"]
    assert container["HostConfig"]["ReadonlyRootfs"] is True
    assert container["State"]["Running"] is True
    # The image has no shell, and an ordinary user may not enter another
    # user's /proc/<pid>/root. So a helper container (the builder image, which
    # has busybox) joins the service's PID namespace as the service's own user
    # and writes through /proc/1/root: the kernel must refuse with EROFS,
    # while reading the same root works.
    builder = host.ansible("ansible.builtin.debug", "msg={{ images_builder_image }}")["msg"]
    helper = ("docker run --rm --network none --pid container:%s --user %s --entrypoint sh %s -c %s")
    name = container["Name"].lstrip("/")
    readable = host.run(helper, name, IMAGE_USER, builder, "ls /proc/1/root/")
    assert readable.rc == 0, readable.stderr
    written = host.run(helper, name, IMAGE_USER, builder, "echo probe > /proc/1/root/.molecule-write-probe")
    assert written.rc != 0
    assert "Read-only file system" in written.stderr, written.stderr


def test_container_drops_every_capability(service):
    assert service["container"]["HostConfig"]["CapDrop"] == ["ALL"]


def test_container_is_only_on_the_scenario_network(scenario, service):
    networks = service["container"]["NetworkSettings"]["Networks"]
    assert set(networks) == {scenario["images_test_network"]}


def test_invoice_app_is_configured_with_payment_provider_by_name(host, scenario):
    names = scenario["images_test_containers"]
    provider = inspect(host, "container", names["payment_provider"]["name"])
    invoice_app = inspect(host, "container", names["invoice_app"]["name"])
    network = scenario["images_test_network"]
    assert names["payment_provider"]["alias"] in provider["NetworkSettings"]["Networks"][network]["Aliases"]
    url = f"http://{names['payment_provider']['alias']}:{scenario['platform_services']['payment_provider']['port']}"
    assert f"PAYMENT_PROVIDER_URL={url}" in invoice_app["Config"]["Env"]


# --- invoice-app pays through payment-provider ------------------------------


def test_invoices_start_unpaid(payment_run):
    status, ctype, invoices = payment_run["before"]
    assert (status, ctype) == (200, "application/json")
    assert len(invoices) == 3
    assert [invoice["IsPaid"] for invoice in invoices] == [False, False, False]


def test_pay_succeeds_for_every_invoice(payment_run):
    status, _, body = payment_run["pay"]
    assert status == 200, body
    assert body["failed"] == []
    paid = sorted(invoice["InvoiceId"] for invoice in body["paid"])
    assert paid == sorted(invoice["InvoiceId"] for invoice in payment_run["before"][2])


def test_every_invoice_is_paid_afterwards(payment_run):
    status, _, invoices = payment_run["after"]
    assert status == 200
    assert sorted(i["InvoiceId"] for i in invoices) == sorted(i["InvoiceId"] for i in payment_run["before"][2])
    assert all(invoice["IsPaid"] is True for invoice in invoices), invoices


def test_payment_provider_booked_each_invoice(payment_run):
    """payment-provider's ledger started empty, so a duplicate proves invoice-app's call got there."""
    for invoice in payment_run["before"][2]:
        payment = {"id": invoice["InvoiceId"], "value": invoice["Value"], "currency": invoice["Currency"]}
        status, _, body = call("POST", f"{payment_run['provider']}/payments/pay", json.dumps(payment).encode())
        assert status == 200, body
        assert body == {"id": invoice["InvoiceId"], "duplicate": True}


# --- payment-provider refuses bad input -------------------------------------


def test_payment_provider_accepts_a_valid_payment(urls):
    payment = {"id": f"probe-{uuid.uuid4()}", "value": 1.5, "currency": "EUR"}
    status, _, body = call("POST", f"{urls['payment_provider']}/payments/pay", json.dumps(payment).encode())
    assert status == 200, body
    assert body == {"id": payment["id"], "duplicate": False}


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        pytest.param(b'{"id": "I1", "value": 12.15,', "", id="truncated-json"),
        pytest.param(b"{not json}", "malformed", id="malformed-json"),
        pytest.param(b'{"value": 12.15, "currency": "EUR"}', '"id"', id="missing-id"),
        pytest.param(b'{"id": "I1", "currency": "EUR"}', '"value"', id="missing-value"),
        pytest.param(b'{"id": "I1", "value": 12.15}', '"currency"', id="missing-currency"),
    ],
)
def test_payment_provider_rejects_bad_input_with_json_error(urls, body, mentions):
    status, ctype, answer = call("POST", f"{urls['payment_provider']}/payments/pay", body)
    assert (status, ctype) == (400, "application/json")
    assert isinstance(answer.get("error"), str) and answer["error"]
    assert mentions in answer["error"]
