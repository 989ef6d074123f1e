"""Fixtures of the browser tests: a real `convertly serve` (embedded mode) on a free loopback
port, Debian's Chromium driven by Playwright, a fresh browser context per test, and a place
for screenshots (test-artifacts/dashboard/, ignored by git).

Chromium and Playwright come from `make setup` (the chromium Debian package and the dev
extra). When either is missing the tests fail and say so; they are never skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest

from convertly.service import Services
from convertly.settings import Settings
from tests.api.support import SHARED_LIMITS, Tenant, new_tenant, services_for
from tests.infra import free_ports, terminate

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
STARTUP_TIMEOUT = 60.0


@dataclass
class Server:
    """A running `convertly serve`: its base URL, settings and a handle on its data."""

    base: str
    settings: Settings
    log: Path
    services: Services = field(repr=False)

    def tenant(self, name: str = "dashboard") -> Tenant:
        return new_tenant(self.services, name)

    def client(self, tenant: Tenant) -> httpx2.Client:
        return httpx2.Client(base_url=self.base, headers=tenant.headers, timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("dashboard-server")
    # The page's tests share one address and sign in with wrong keys on purpose.
    settings = Settings(data_dir=data_dir, workers=2, **SHARED_LIMITS)
    services = services_for("embedded", settings)
    port = free_ports(1)[0]
    env = {**os.environ, **{k: v for k, v in settings.to_env().items() if v},
           "CONVERTLY_PORT": str(port)}
    log_path = data_dir / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "convertly", "serve"], env=env,
                               cwd=data_dir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        yield Server(base=base, settings=settings, log=log_path, services=services)
    finally:
        terminate(process)
        log.close()


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is not installed; `make setup` installs it (Debian package "
                "`chromium`, or run: apt-get install chromium).", pytrace=False)


# Package scope: Playwright's sync API keeps an asyncio loop marked running on the main thread
# while it is open, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is not installed; `make setup` installs it "
                    "(the dev extra: pip install -e '.[dev]').", pytrace=False)
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright's own browser builds cannot be downloaded here: drive the system Chromium.
    launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    try:
        yield launched
    finally:
        launched.close()


@dataclass
class Tab:
    """A page of a fresh browser context, with what it logged and requested."""

    page: Page
    context: BrowserContext
    server: Server
    errors: list[str]
    api_requests: list[tuple[str, dict[str, str]]]

    def open(self) -> None:
        self.page.goto(self.server.base + "/")

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def sign_in(self, tenant: Tenant, *, remember: bool = False) -> None:
        self.open()
        self.page.get_by_label("API key").fill(tenant.key)
        if remember:
            self.page.get_by_label("Remember on this device").check()
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Convert files").wait_for()

    def overflow(self) -> int:
        """How many CSS pixels the page is wider than its viewport (0: no sideways scroll)."""
        width: int = self.page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth")
        return width


def _context(browser: Browser, **options: Any) -> BrowserContext:
    context = browser.new_context(accept_downloads=True, **options)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def tab_factory(browser: Browser, server: Server) -> Iterator[Any]:
    contexts: list[BrowserContext] = []
    tabs: list[Tab] = []

    def make(**options: Any) -> Tab:
        context = _context(browser, **options)
        contexts.append(context)
        page = context.new_page()
        tab = Tab(page=page, context=context, server=server, errors=[], api_requests=[])
        page.on("pageerror", lambda exc: tab.errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: tab.errors.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" else None)
        page.on("request", lambda req: tab.api_requests.append((req.url, req.headers))
                if "/api/" in req.url else None)
        tabs.append(tab)
        return tab

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def tab(tab_factory: Any) -> Tab:
    made: Tab = tab_factory()
    return made
