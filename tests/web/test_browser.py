"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download), the
service on a free loopback port over the dashboard tests' store. Clicks through tournament ->
competitor -> run -> logs, watches a live update arrive without a reload, checks keyboard and phone
use, signs a customer in and out through the forms (and not through another site's), and keeps a
screenshot of each page as an artifact (the folder is printed)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from web_store import CHALLENGER, DashboardStore, customer_with_a_job

from trainarena.api import create_app
from trainarena.orchestrator import create_tournament
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TRAINARENA_CHROMIUM", "/usr/bin/chromium")
# What this machine's chromium needs headless (no sandbox as root, no GPU, nothing fetched in the background).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("TRAINARENA_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts")) / "browser"
README_SCREENSHOT = Path(__file__).parents[2] / "docs" / "dashboard.png"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LIVE_WAIT_MS = 15_000

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[test]')")
if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
    pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (scripts/setup does, as root)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """The API and dashboard served by uvicorn in a thread of the test (stopped at the end)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.port = _free_port()
        config = uvicorn.Config(create_app(settings, store=store), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Service:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the service did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def store(dashboard_store: DashboardStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("TRAINARENA_DASHBOARD__POLL_SECONDS", "0.3")  # live updates show up quickly
    with open_store(Settings()) as opened:
        yield opened


@pytest.fixture
def service(store: Store) -> Iterator[Service]:
    with Service(store, Settings()) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {ARTIFACTS}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, service: Service) -> Iterator[object]:
    context = browser.new_context(viewport=DESKTOP, base_url=service.url)
    opened = context.new_page()
    fetched_elsewhere: list[str] = []
    opened.on("request", lambda request: None if request.url.startswith(service.url) else fetched_elsewhere.append(request.url))
    yield opened
    context.close()
    assert not fetched_elsewhere, f"the dashboard fetched from elsewhere: {fetched_elsewhere}"


def _shot(page: object, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_click_through_tournament_competitor_run_and_logs(page: object, dashboard_store: DashboardStore) -> None:
    expect = sync_api.expect
    page.goto("/")
    expect(page.get_by_role("heading", name="Reigning champions")).to_be_visible()
    expect(page.locator(".champion").first).to_contain_text(CHALLENGER)
    _shot(page, "home")
    page.get_by_role("region", name="Tournaments").get_by_role("link", name="week-2", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("week-2")
    expect(page.get_by_role("heading", name="Bracket")).to_be_visible()
    expect(page.locator("article.bye")).to_contain_text("advance without playing")
    expect(page.locator("figure.chart svg")).to_be_visible()
    _shot(page, "tournament")
    if os.environ.get("TRAINARENA_UPDATE_DOCS_SCREENSHOT"):
        page.screenshot(path=str(README_SCREENSHOT), full_page=False)
    page.locator("#boss").get_by_role("link", name=CHALLENGER).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(CHALLENGER)
    expect(page.locator("figure.chart svg")).to_be_visible()
    _shot(page, "competitor")
    page.get_by_role("row").filter(has_text="instruct-boss-0").get_by_role("link", name="run").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("challenger on instruct-boss-0")
    expect(page.get_by_text("succeeded").first).to_be_visible()
    _shot(page, "run")
    page.get_by_role("link", name="stderr.log").click()
    expect(page.locator("body")).to_contain_text("stderr line 1\n")
    _shot(page, "log")


def test_a_running_tournament_updates_without_a_reload(page: object, store: Store, dashboard_store: DashboardStore) -> None:
    expect = sync_api.expect
    page.goto(f"/tournaments/{dashboard_store.running_id}")
    status = page.locator("#live-status")
    expect(status).to_contain_text("1 of 4 runs finished")
    page.evaluate("window.loadedOnce = 'still the same page'")
    page.locator("#bracket ~ .bracket").get_by_role("link", name="crasher").first.focus()  # a keyboard user is on it
    dashboard_store.drive_running(store)
    expect(status).to_contain_text("2 of 4 runs finished", timeout=LIVE_WAIT_MS)
    assert page.evaluate("window.loadedOnce") == "still the same page", "the page was reloaded"
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/competitors/crasher", "the update took the focus away"
    _shot(page, "tournament-live")


def test_the_home_page_shows_a_tournament_that_starts_while_it_is_open(page: object, store: Store) -> None:
    page.goto("/")
    running = page.locator("#running")
    sync_api.expect(running).to_contain_text("week-3")
    page.evaluate("window.loadedOnce = 'still the same page'")
    with store.transaction() as session:
        create_tournament(session, name="week-4", kind="text", seed=4, entrants=["crasher", "slowpoke"])
    sync_api.expect(running).to_contain_text("week-4", timeout=LIVE_WAIT_MS)
    assert page.evaluate("window.loadedOnce") == "still the same page", "the page was reloaded"


def test_keyboard_reaches_the_content_and_a_phone_needs_no_sideways_scroll(page: object, dashboard_store: DashboardStore) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.set_viewport_size(PHONE)
    for path, name in (("/", "phone-home"), (f"/tournaments/{dashboard_store.boss_id}", "phone-tournament")):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), f"{path} scrolls sideways on a phone"
        _shot(page, name)


def _customer_key(store: Store, name: str) -> str:
    with store.transaction() as session:
        return create_key(session, name, ApiRole.CUSTOMER).secret


def test_a_customer_signs_in_and_out_through_the_forms(page: object, store: Store) -> None:
    expect = sync_api.expect
    secret = _customer_key(store, "alice")
    page.goto("/signin")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jobs and models")
    expect(page.locator("main")).to_contain_text("Signed in as alice")
    _shot(page, "account")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Reigning champions")).to_be_visible()
    page.goto("/account")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")



def test_a_running_jobs_page_goes_to_the_sign_in_page_once_signed_out(page: object, store: Store) -> None:
    """Signed out meanwhile (another tab, an expired cookie), the job's fragment redirects to the sign-in
    page: live.js swapped that whole page, header and all, into the job page's status."""
    secret = customer_with_a_job("carol")
    with store.transaction() as session:
        session.get_one(Job, "job-carol").status = "running"
    page.goto("/signin")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/account/jobs/job-carol")
    sync_api.expect(page.locator("#job-status")).to_contain_text("running")
    page.context.clear_cookies()
    sync_api.expect(page).to_have_url(re.compile(r"/signin$"), timeout=LIVE_WAIT_MS)
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")

def test_another_sites_page_cannot_sign_a_visitor_in(browser: object, service: Service, store: Store) -> None:
    """Login CSRF in a real browser: a page on another site auto-submits the sign-in form with the
    attacker's key (a top-level cross-site post, which would set even a SameSite=strict cookie). The
    attacker's page is served by the browser itself (a route), so nothing leaves the machine."""
    attacker_key = _customer_key(store, "mallory")
    attack = (f'<form method="post" action="{service.url}/signin"><input name="key" value="{attacker_key}">'
              f'<input name="form_token" value="{"A" * 43}"></form><script>document.forms[0].submit()</script>')  # fmt: skip
    context = browser.new_context(viewport=DESKTOP)
    try:
        context.route("http://attacker.test/**", lambda route: route.fulfill(content_type="text/html", body=attack))
        victim = context.new_page()
        victim.goto(f"{service.url}/signin")  # the visitor has the form's cookie of this site, too
        with victim.expect_response(f"{service.url}/signin") as answered:
            victim.goto("http://attacker.test/")
        assert answered.value.status == 403 and answered.value.request.method == "POST"
        sync_api.expect(victim.get_by_role("alert")).to_contain_text("came from another site")
        assert not [c for c in context.cookies() if c["name"] == "trainarena_key"], "the attacker's key was set"
        victim.goto(f"{service.url}/account")
        sync_api.expect(victim.get_by_role("heading", level=1)).to_have_text("Sign in")
    finally:
        context.close()
