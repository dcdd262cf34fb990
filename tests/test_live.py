"""`toybook live` over real loopback HTTP: only loopback Host headers get pages (and the
token), the token is not on Jupyter's command line, busy ports fail cleanly by name and
leave no server behind."""

import http.client
import socket
import subprocess

import pytest

from toybook.errors import ToybookError
from toybook.live import HOST, LiveSite


@pytest.fixture
def site(tmp_path):
    (tmp_path / "index.html").write_text("<html><head><title>t</title></head><body>hi</body></html>")
    (tmp_path / "plain.txt").write_text("plain")
    return tmp_path


@pytest.fixture
def live(site, tmp_path):
    with LiveSite(site, root_dir=tmp_path) as running:
        yield running


def get(port, path="/", host=None):
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request("GET", path, headers={"Host": host} if host else {})
    response = connection.getresponse()
    body = response.read().decode(errors="replace")
    connection.close()
    return response.status, body


def test_loopback_hosts_get_the_page_with_the_token(live):
    for host in (f"127.0.0.1:{live.port}", f"localhost:{live.port}"):
        status, body = get(live.port, "/", host)
        assert status == 200 and live.token in body and "window.TOYBOOK_LIVE" in body
    assert get(live.port, "/plain.txt", f"localhost:{live.port}") == (200, "plain")


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "localhost", "attacker.test", "127.0.0.1.nip.io:{port}"])
def test_other_hosts_get_403_and_no_token(live, host):
    for path in ("/", "/index.html", "/plain.txt"):
        status, body = get(live.port, path, host.format(port=live.port))
        assert status == 403 and live.token not in body


def test_jupyter_refuses_other_hosts_and_needs_the_token(live):
    assert get(live.jupyter_port, f"/api/kernels?token={live.token}", f"evil.example:{live.jupyter_port}")[0] == 403
    assert get(live.jupyter_port, "/api/kernels", f"127.0.0.1:{live.jupyter_port}")[0] == 403
    assert get(live.jupyter_port, f"/api/kernels?token={live.token}", f"127.0.0.1:{live.jupyter_port}")[0] == 200


def test_the_token_is_not_on_a_command_line(live):
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "jupyter_server" in listing and live.token not in listing
    assert live.log_path.exists() and live.log_path.parent.stat().st_mode & 0o777 == 0o700


def jupyter_processes():
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if "-m jupyter_server" in line]


@pytest.fixture
def busy_port():
    """A loopback port some other program is listening on."""
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_busy_site_port_fails_by_name_before_jupyter_starts(site, busy_port):
    before = jupyter_processes()
    with pytest.raises(ToybookError, match=f"cannot serve the site on 127.0.0.1:{busy_port} .*choose another --port"):
        LiveSite(site, port=busy_port).start()
    assert jupyter_processes() == before


def test_a_busy_jupyter_port_fails_by_name_and_leaves_nothing_running(site, busy_port):
    before = jupyter_processes()
    live = LiveSite(site, jupyter_port=busy_port)
    with pytest.raises(ToybookError, match=f"Jupyter server could not start on 127.0.0.1:{busy_port}.*--jupyter-port"):
        live.start()
    assert jupyter_processes() == before
    with pytest.raises(OSError):  # the static server was stopped too
        get(live.port, "/", f"127.0.0.1:{live.port}")
