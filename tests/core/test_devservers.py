"""The loopback target site and forward proxy behave as their docstring promises."""

from __future__ import annotations

import socket

import httpx
import pytest

from coreadmin.devservers import (
    BAN_TEXT,
    CAPTCHA_TEXT,
    TARGET_OK_TEXT,
    ForwardProxy,
    TargetSite,
    closed_port,
)


@pytest.fixture(scope="module")
def site():
    with TargetSite(slow_ms=1500) as running:
        yield running


def test_the_target_site_serves_normal_ban_ratelimit_captcha_and_status_pages(site):
    with httpx.Client() as client:
        ok = client.get(site.url("/any/page"))
        banned = client.get(site.url("/banned"))
        limited = client.get(site.url("/ratelimited"))
        captcha = client.get(site.url("/captcha"))
        teapot = client.get(site.url("/status/418"))
    assert ok.status_code == 200 and TARGET_OK_TEXT in ok.text
    assert banned.status_code == 403 and BAN_TEXT in banned.text
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
    assert captcha.status_code == 200 and CAPTCHA_TEXT in captcha.text
    assert TARGET_OK_TEXT not in captcha.text
    assert teapot.status_code == 418
    assert site.hits["/banned"] >= 1


def test_a_slow_page_exceeds_a_short_client_timeout_and_answers_a_patient_one(site):
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(site.url("/slow?ms=1000"), timeout=0.2)
    assert TARGET_OK_TEXT in httpx.get(site.url("/slow?ms=50"), timeout=5).text


def test_a_healthy_proxy_forwards_absolute_uri_requests_and_says_so_in_via(site):
    with ForwardProxy(name="p1") as proxy, httpx.Client(proxy=proxy.url) as client:
        echo = client.post(site.url("/echo?x=1"), content=b"hello")
        page = client.get(site.url("/"))
    assert echo.json()["headers"]["Via"] == "1.1 p1"
    assert echo.json()["path"] == "/echo?x=1" and echo.json()["method"] == "POST"
    assert page.status_code == 200 and TARGET_OK_TEXT in page.text
    assert proxy.requests == 2
    assert site.hits_by_proxy["p1"] >= 2


def test_a_proxy_with_basic_auth_refuses_the_wrong_password_with_407(site):
    with ForwardProxy(auth=("scraper", "s3cret:/@")) as proxy:
        good = httpx.get(site.url("/"), proxy=proxy.url)
        wrong = httpx.get(site.url("/"), proxy=proxy.url.replace("s3cret", "nope"))
        none = httpx.get(site.url("/"), proxy=f"http://{proxy.netloc}")
    assert good.status_code == 200
    assert wrong.status_code == 407 and none.status_code == 407


def test_connect_opens_a_tunnel_to_the_target(site):
    with ForwardProxy() as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(f"CONNECT {site.netloc} HTTP/1.1\r\nHost: {site.netloc}\r\n\r\n".encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.sendall(f"GET /tunnelled HTTP/1.1\r\nHost: {site.netloc}\r\n\r\n".encode())
        data = b""
        while TARGET_OK_TEXT.encode() not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200")


def test_a_refusing_proxy_and_a_closed_port_both_fail_the_request(site):
    with ForwardProxy("refuse") as proxy:
        with pytest.raises(httpx.TransportError):
            httpx.get(site.url("/"), proxy=proxy.url)
        assert proxy.dropped == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(site.url("/"), proxy=f"http://127.0.0.1:{closed_port()}")


def test_a_slow_proxy_times_out_a_short_client_and_stops_promptly(site):
    with ForwardProxy("slow", delay_ms=5000) as proxy, pytest.raises(httpx.ReadTimeout):
        httpx.get(site.url("/"), proxy=proxy.url, timeout=0.2)


def test_a_flaky_proxy_fails_about_its_fail_rate_of_requests(site):
    outcomes = []
    with ForwardProxy("flaky", fail_rate=0.5, seed=7) as proxy:
        for _ in range(40):
            try:
                outcomes.append(httpx.get(site.url("/"), proxy=proxy.url).status_code == 200)
            except httpx.TransportError:
                outcomes.append(False)
    assert 8 <= outcomes.count(False) <= 32
    assert outcomes.count(False) == proxy.dropped


def test_a_banned_proxy_gets_ban_pages_only_from_its_banned_targets(site):
    with TargetSite() as other, ForwardProxy("banned", banned_targets={site.netloc}) as proxy:
        blocked = httpx.get(site.url("/"), proxy=proxy.url)
        fine = httpx.get(other.url("/"), proxy=proxy.url)
        proxy.ban_status = 200
        captcha = httpx.get(site.url("/"), proxy=proxy.url)
        proxy.mode = "healthy"
        recovered = httpx.get(site.url("/"), proxy=proxy.url)
    assert blocked.status_code == 403 and BAN_TEXT in blocked.text
    assert fine.status_code == 200 and TARGET_OK_TEXT in fine.text
    assert captcha.status_code == 200 and CAPTCHA_TEXT in captcha.text
    assert recovered.status_code == 200 and TARGET_OK_TEXT in recovered.text
    assert proxy.bans_served == 2


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        ForwardProxy("sometimes")


def test_a_proxy_with_ban_after_gets_banned_by_a_busy_target_only(site):
    with TargetSite() as quiet, ForwardProxy(ban_after=3) as proxy:
        statuses = [httpx.get(site.url("/"), proxy=proxy.url).status_code for _ in range(5)]
        other = httpx.get(quiet.url("/"), proxy=proxy.url)
    assert statuses == [200, 200, 200, 403, 403]
    assert other.status_code == 200
    assert proxy.auto_banned == {site.netloc}
