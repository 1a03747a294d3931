"""socks5 proxies: health checks through a real loopback SOCKS5 server (devservers
SocksProxy) to the real target site, and the strict command on a mix of http and socks5."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command

from apps.proxies.checks import _without_secrets
from apps.proxies.models import HealthCheck
from apps.proxies.services import proxies_check, proxy_create
from coreadmin.devservers import TARGET_OK_TEXT, ForwardProxy, SocksProxy


@pytest.fixture
def check_settings(settings, target_site):
    settings.PROXY_CHECK_URL = target_site.url("/health")
    settings.PROXY_CHECK_EXPECT_TEXT = TARGET_OK_TEXT
    settings.PROXY_CHECK_TIMEOUT_SECONDS = 2
    return settings


@pytest.fixture
def socks() -> Iterator[SocksProxy]:
    with SocksProxy(auth=("scraper", "socks-pw:/@")) as server:
        yield server


def test_a_socks5_proxys_check_goes_through_the_socks_server_and_records_success(
    check_settings, socks, target_site, db, clock
):
    proxy = proxy_create(url=socks.url, service="reddit")
    assert proxy.scheme == "socks5" and proxy.url_with_password() == socks.url
    result = proxies_check(proxies=[proxy])[proxy.pk]
    assert result.ok and result.error == "" and result.status_code == 200
    assert socks.relayed == 1 and socks.targets[target_site.netloc] == 1
    assert socks.address_types["ipv4"] == 1 and socks.auth_failures == 0
    row = HealthCheck.objects.get(proxy=proxy)
    assert row.ok and row.latency_ms is not None and row.latency_ms > 0
    assert row.status_code == 200 and row.error == ""


def test_a_domain_name_target_is_resolved_by_the_socks_server(
    check_settings, socks, target_site, db, clock
):
    check_settings.PROXY_CHECK_URL = f"http://localhost:{target_site.port}/health"
    proxy = proxy_create(url=socks.url, service="reddit")
    assert proxies_check(proxies=[proxy])[proxy.pk].ok
    assert socks.address_types["domain"] == 1 and socks.relayed == 1


def test_wrong_socks5_credentials_fail_the_check_with_a_clear_error(
    check_settings, socks, db, clock
):
    proxy = proxy_create(url=f"socks5://scraper:wrong-pw@{socks.netloc}", service="reddit")
    result = proxies_check(proxies=[proxy])[proxy.pk]
    assert not result.ok and result.latency_ms is None
    assert result.error == "proxy error: Invalid username/password"
    assert socks.auth_failures == 1 and socks.relayed == 0
    row = HealthCheck.objects.get(proxy=proxy)
    assert not row.ok and row.error == "proxy error: Invalid username/password"
    assert "wrong-pw" not in row.error


def test_an_expected_text_mismatch_through_socks5_is_a_failure(
    check_settings, socks, target_site, db, clock
):
    check_settings.PROXY_CHECK_URL = target_site.url("/captcha")
    proxy = proxy_create(url=socks.url, service="reddit")
    result = proxies_check(proxies=[proxy])[proxy.pk]
    assert not result.ok and result.status_code == 200
    assert "expected text missing" in result.error
    assert socks.relayed == 1  # it did go through; the page was wrong
    assert not HealthCheck.objects.get(proxy=proxy).ok


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("refuse", "proxy error: SOCKS5 handshake failed (closed or malformed)"),
        ("deny", "proxy error: Proxy Server could not connect: Connection not allowed by ruleset."),
        ("break", "connection error (RemoteProtocolError)"),
    ],
)
def test_a_socks5_proxy_that_refuses_denies_or_breaks_fails_its_check(
    check_settings, db, clock, mode, error
):
    with SocksProxy(mode) as server:
        proxy = proxy_create(url=server.url, service="reddit")
        result = proxies_check(proxies=[proxy])[proxy.pk]
    assert not result.ok and result.error == error
    assert server.connections == 1 and server.dropped == 1 and server.relayed == 0


def test_strict_check_on_http_and_socks5_proxies_lists_exactly_the_failing_ones(
    check_settings, db, clock, capsys
):
    with (
        ForwardProxy() as http_ok,
        ForwardProxy("refuse") as http_bad,
        SocksProxy(auth=("u", "good-socks-pw")) as socks_ok,
        SocksProxy("refuse") as socks_refusing,
        SocksProxy(auth=("u", "good-socks-pw2")) as socks_locked,
    ):
        proxies = {
            "http_ok": proxy_create(url=http_ok.url, service="mix"),
            "http_bad": proxy_create(url=http_bad.url, service="mix"),
            "socks_ok": proxy_create(url=socks_ok.url, service="mix"),
            "socks_refusing": proxy_create(url=socks_refusing.url, service="mix"),
            "socks_bad_auth": proxy_create(
                url=f"socks5://u:not-it@{socks_locked.netloc}", service="mix"
            ),
        }
        with pytest.raises(CommandError) as failure:
            call_command("check_proxies", "--strict", "--attempts", "2", "--service", "mix")
    message = str(failure.value)
    listed = message.split(": ", 1)[1].split(", ")
    failing = ("http_bad", "socks_refusing", "socks_bad_auth")
    assert message.startswith("3 proxies failed every attempt")
    assert sorted(listed) == sorted(f"{proxies[n].pk} {proxies[n].display_url}" for n in failing)
    out = capsys.readouterr().out
    assert "2 of 5 proxies passed" in out
    assert f"{proxies['socks_ok'].pk} socks5://u@{socks_ok.netloc} [mix] ok" in out
    assert "proxy error: Invalid username/password" in out
    assert socks_ok.relayed == 1 and socks_locked.auth_failures == 2  # two attempts
    assert socks_refusing.connections == 2
    for secret in ("good-socks-pw", "not-it"):
        assert secret not in message + out


def _handshake(server: SocksProxy, request: bytes) -> bytes:
    """A raw SOCKS5 exchange without auth; returns the server's reply to ``request``."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"\x05\x01\x00")
        assert conn.recv(2) == b"\x05\x00"
        conn.sendall(request)
        return conn.recv(10)


def test_the_socks_server_refuses_unsupported_commands_address_types_and_methods():
    with SocksProxy() as server, SocksProxy(auth=("u", "p")) as locked:
        bind = _handshake(server, b"\x05\x02\x00\x01" + socket.inet_aton("127.0.0.1") + b"\0P")
        ipv6 = _handshake(server, b"\x05\x01\x00\x04" + bytes(16) + struct.pack("!H", 80))
        with socket.create_connection(("127.0.0.1", locked.port), timeout=5) as conn:
            conn.sendall(b"\x05\x01\x00")  # offers only "no auth" to a server that wants auth
            no_method = conn.recv(2)
    assert bind[:2] == b"\x05\x07"  # command not supported
    assert ipv6[:2] == b"\x05\x08"  # address type not supported
    assert no_method == b"\x05\xff" and locked.auth_failures == 1
    assert server.relayed == 0


def test_a_proxy_error_message_never_keeps_the_password_raw_or_encoded():
    url = "socks5://scraper:socks-pw%3A%2F%40@127.0.0.1:1080"
    message = "refused socks-pw:/@ and socks-pw%3A%2F%40"
    assert _without_secrets(message, url) == "refused *** and ***"
    assert _without_secrets("Invalid username/password", "socks5://127.0.0.1:1") == (
        "Invalid username/password"
    )
