from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API drives an event loop in this thread; the live server's database
# work happens in its own thread, but fixtures touch the ORM here too.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing; `make test` installs it (apt-get install chromium)"
        )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def console_errors(page):
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


@pytest.fixture
def logged_in_page(page, live_server, operator_user):
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", operator_user.username)
    page.fill("input[name=password]", "pw-" + operator_user.username)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    return page
