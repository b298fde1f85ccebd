"""Customers' pages: signing in with an API key, and each key seeing its own jobs and models only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from web_store import customer_with_a_job, form_token, sign_in, text_of

from trainarena.api import create_app
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job, JobEvent, RegisteredModel, Run


def _sign_out(client: TestClient) -> Response:
    return client.post("/signout", data={"form_token": form_token(client.get("/account").text)}, follow_redirects=False)


def test_a_customer_signs_in_and_sees_its_own_jobs_and_models_only(client: TestClient) -> None:
    alice, _bob = customer_with_a_job("alice"), customer_with_a_job("bob")
    assert client.get("/account", follow_redirects=False).headers["location"] == "/signin"
    refused = sign_in(client, "ta_not-a-key")
    assert refused.status_code == 401 and "unknown or revoked" in refused.text
    signed_in = sign_in(client, alice, follow_redirects=False)
    assert signed_in.status_code == 303 and "httponly" in signed_in.headers["set-cookie"].lower()
    words = text_of(client.get("/account").text)
    assert "Signed in as alice" in words and "job-alice instruct trainarena:tiny_llama succeeded 1.2500" in words
    assert "model-alice job instruct" in words and "job-bob" not in words and "model-bob" not in words
    assert client.get("/account").text.count('<th scope="col" title="lower is better">Score↓</th>') == 2  # jobs' and models'
    home = text_of(client.get("/").text)
    assert "Your recent jobs job-alice instruct succeeded" in home and "job-bob" not in home
    job = text_of(client.get("/account/jobs/job-alice").text)
    assert "queued queued behind 0 jobs" in job and "finished model model-alice registered" in job
    assert client.get("/account/jobs/job-bob").status_code == 404  # another customer's job is not found
    assert client.get("/account/jobs/job-bob/live").status_code == 404
    signed_out = _sign_out(client)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/"
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert "Your recent jobs" not in client.get("/").text


def test_opening_signout_in_a_browser_leads_to_the_sign_out_form(client: TestClient) -> None:
    """GET /signout answered a JSON 405: it now leads to the account page, whose form signs out (a post
    with its token, so a link from elsewhere cannot sign anyone out)."""
    sign_in(client, customer_with_a_job("alice"))
    opened = client.get("/signout", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/account"
    page = client.get("/signout")
    assert page.status_code == 200 and "Signed in as alice . Sign out" in text_of(page.text)
    assert _sign_out(client).headers["location"] == "/"
    assert client.get("/signout").url.path == "/signin"  # signed out, it is sent on to sign in


def test_a_jobs_score_says_which_way_is_better(client: TestClient) -> None:
    """A job's score was a bare number (score 1.2500): a customer could not tell a good one from a bad one."""
    sign_in(client, customer_with_a_job("alice"))
    assert "succeeded score 1.2500 (lower is better)" in text_of(client.get("/account/jobs/job-alice").text)


def test_empty_pages_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tournaments page said only "No tournaments yet.", a customer's "No model yet." and the home
    page "carol has no job yet.": none said how to get one."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    with open_store(settings) as store:
        with store.transaction() as session:
            secret = create_key(session, "carol", ApiRole.CUSTOMER).secret
        with TestClient(create_app(settings, store=store)) as client:
            for page in ("/", "/tournaments"):
                assert "No tournaments yet: trainarena demo plays one, or trainarena tournament create ." in text_of(client.get(page).text)
            assert "No run was made on a task yet: a tournament's tasks are listed here once it plays them" in text_of(client.get("/tasks").text)
            sign_in(client, secret)
            assert "carol has no job yet: create one with POST /v1/jobs (see the API docs )." in text_of(client.get("/").text)
            account = text_of(client.get("/account").text)
            assert "No job yet: create one with POST /v1/jobs" in account
            assert "No model yet: each job that succeeds registers its model here." in account
            with store.transaction() as session:
                operator = create_key(session, "ops", ApiRole.OPERATOR).secret
            sign_in(client, operator)
            assert "No customer has a job yet: a customer's key can create one with POST /v1/jobs" in text_of(client.get("/").text)


def test_an_operators_home_page_lists_every_customers_recent_jobs_as_such(client: TestClient) -> None:
    """It labelled everyone's jobs "Your recent jobs", as if the operator had ordered them."""
    for name in ("alice", "bob"):
        customer_with_a_job(name)
    with open_store(Settings()) as store, store.transaction() as session:
        operator = create_key(session, "ops", ApiRole.OPERATOR).secret
    sign_in(client, operator)
    home = text_of(client.get("/").text)
    assert "Recent jobs (all customers) job-bob instruct succeeded" in home and "job-alice" in home
    assert "Your recent jobs" not in home


def test_a_succeeded_jobs_page_links_its_models_download(client: TestClient) -> None:
    """The job page named its model without a link: the customer had to find it again on the account page."""
    sign_in(client, customer_with_a_job("alice"))
    assert '<a href="/account/models/model-alice/download" download>' in client.get("/account/jobs/job-alice").text


def test_a_competitors_key_is_refused_at_sign_in_as_the_api_refuses_it_jobs(client: TestClient) -> None:
    """It signed in to an empty "Jobs and models" page telling it to create a job with POST /v1/jobs,
    which answers a competitor's key 403."""
    with open_store(Settings()) as store, store.transaction() as session:
        secret = create_key(session, "rival", ApiRole.COMPETITOR).secret
    refused = sign_in(client, secret, follow_redirects=False)
    assert refused.status_code == 403 and "A competitor's key has no jobs or models" in text_of(refused.text)
    assert "trainarena_key" not in refused.headers.get("set-cookie", "")
    client.cookies.set("trainarena_key", secret)  # a cookie set before: it signs nobody in either
    assert client.get("/account", follow_redirects=False).headers["location"] == "/signin"
    assert "Your recent jobs" not in client.get("/").text

def test_a_job_the_house_script_trained_says_so_as_the_api_does(client: TestClient) -> None:
    """It said "Trained by –" while GET /v1/jobs/{id} said "house script" (QA 10)."""
    from trainarena.jobs import HOUSE_SCRIPT
    from trainarena.store.adhoc import start_adhoc_run

    carol = customer_with_a_job("carol")
    with open_store(Settings()) as store, store.transaction() as session:
        run = start_adhoc_run(session, origin="job", definition={"name": "job-carol"}, digest="0" * 64)
        session.get_one(Job, "job-carol").run_id = run.id
    sign_in(client, carol)
    assert f"Trained by {HOUSE_SCRIPT} Model" in text_of(client.get("/account/jobs/job-carol").text)
    assert f"Trained by {HOUSE_SCRIPT} Model" in text_of(client.get("/account/jobs/job-carol/live").text)
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Job, "job-carol").run_id = None  # not started yet: nobody trains it
    assert "Trained by – Model" in text_of(client.get("/account/jobs/job-carol").text)


def test_a_job_whose_weights_are_the_base_models_says_so(client: TestClient) -> None:
    """Its script found no improvement and saved the base model's weights (the card's same_as_base)."""
    from trainarena.registry.card import same_as_base_note

    dave = customer_with_a_job("dave")
    sign_in(client, dave)
    assert "Same as the base model" not in text_of(client.get("/account/jobs/job-dave").text)
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(RegisteredModel, "model-dave").card = {"same_as_base": "no gain on 8 held-out pairs"}
        session.get_one(Job, "job-dave").model_id = "model-dave"
    for page in ("/account/jobs/job-dave", "/account/jobs/job-dave/live"):
        assert f"Same as the base model: {same_as_base_note('no gain on 8 held-out pairs')}" in text_of(client.get(page).text)


def test_a_jobs_page_compares_its_score_with_the_base_models(client: TestClient) -> None:
    """A job's score had nothing to read it against: its page says how far it beats the untrained base
    model on the same validation rows, as its model's card measured it."""
    sign_in(client, customer_with_a_job("erin"))
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Job, "job-erin").validation_share = 0.2
        model = session.get_one(RegisteredModel, "model-erin")
        model.score = 1.25
        model.card = {"measurement": {"metric": "eval_loss", "direction": "lower", "validation_share": 0.2, "base_score": 1.5}}
    for page in ("/account/jobs/job-erin", "/account/jobs/job-erin/live"):
        assert ("Against the base model: better than the untrained base model by 0.25 (eval_loss 1.25 against the untrained "
                "base model's 1.5 on the same validation rows, lower is better)") in text_of(client.get(page).text)


def test_a_job_waiting_for_the_platform_says_why_and_until_when_as_the_api_does(client: TestClient) -> None:
    """A job queued again because the platform could not start its try (a full disk) shows that reason
    and when it is tried again; one whose try its service's stop cut short says so."""
    from trainarena.jobs.records import SERVICE_STOPPED
    from trainarena.store.adhoc import start_adhoc_run

    carol = customer_with_a_job("carol")
    waits_until = datetime.now(UTC).replace(hour=10, minute=42, second=5, microsecond=0)  # today's: said without its date
    with open_store(Settings()) as store, store.transaction() as session:
        run = start_adhoc_run(session, origin="job", definition={"name": "job-carol"}, digest="0" * 64)
        run.attempt_records[0].withdraw("the data directory's disk is full")
        job = session.get_one(Job, "job-carol")
        job.run_id, job.status, job.not_before = run.id, "queued", waits_until
    sign_in(client, carol)
    waiting = ("Waiting: the platform could not start its last try: the data directory's disk is full; it is tried again "
               "after 10:42:05 UTC, not counted as a try")  # fmt: skip
    assert waiting in text_of(client.get("/account/jobs/job-carol").text)
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Job, "job-carol").not_before = waits_until - timedelta(days=1)  # another day's: with its date
    said_then = text_of(client.get("/account/jobs/job-carol").text)
    assert f"it is tried again after {waits_until - timedelta(days=1):%Y-%m-%d} 10:42:05 UTC, not counted as a try" in said_then
    with open_store(Settings()) as store, store.transaction() as session:
        job = session.get_one(Job, "job-carol")
        job.not_before = None
        session.get_one(Run, job.run_id).attempt_records[0].failure_reason = SERVICE_STOPPED
    assert (f"Waiting: {SERVICE_STOPPED} during its last try; it is tried again when a job worker runs, not counted as a try"
            in text_of(client.get("/account/jobs/job-carol/live").text))  # fmt: skip
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Job, "job-carol").status = "running"  # its next try: no longer waiting
    assert "Waiting:" not in text_of(client.get("/account/jobs/job-carol/live").text)


def _key_cookies(answer: Response) -> list[str]:
    return [c for c in answer.headers.get_list("set-cookie") if c.startswith("trainarena_key=")]


def test_a_sign_in_form_posted_from_elsewhere_is_refused_and_signs_nobody_in(client: TestClient) -> None:
    """Login CSRF: another site's page posting the attacker's key. Without the form's token, with a wrong
    one, with the cookie missing (a cross-site post carries no SameSite=strict cookie) or from another
    Origin: 403, the sign-in page saying why, and no key cookie."""
    from trainarena.web.account import FORM_COOKIE

    mallory = customer_with_a_job("mallory")
    token = form_token(client.get("/signin").text)
    forged = {
        "no token": ({"key": mallory}, {}),
        "a wrong token": ({"key": mallory, "form_token": token[::-1]}, {}),
        "a token of another alphabet": ({"key": mallory, "form_token": "é" * 43}, {}),
        "a foreign Origin": ({"key": mallory, "form_token": token}, {"origin": "https://attacker.example"}),
        "an opaque Origin without the token": ({"key": mallory}, {"origin": "null"}),
    }
    for case, (data, headers) in forged.items():
        answer = client.post("/signin", data=data, headers=headers, follow_redirects=False)
        assert answer.status_code == 403, case
        assert "This sign-in form expired or came from another site" in text_of(answer.text) and not _key_cookies(answer), case
        assert form_token(answer.text) == token, case  # the page it answers with signs in again
    client.cookies.delete(FORM_COOKIE)
    no_cookie = client.post("/signin", data={"key": mallory, "form_token": token}, follow_redirects=False)
    assert no_cookie.status_code == 403 and not _key_cookies(no_cookie)
    assert client.get("/account", follow_redirects=False).headers["location"] == "/signin"
    fresh = form_token(no_cookie.text)
    assert fresh != token and client.cookies[FORM_COOKIE] == fresh  # a new token, in the form and its cookie
    own = client.post("/signin", data={"key": mallory, "form_token": fresh}, headers={"origin": "http://testserver"},
                      follow_redirects=False)  # fmt: skip
    assert own.status_code == 303 and _key_cookies(own)  # this site's Origin and the form's token: signed in


def test_a_sign_in_post_without_the_form_gets_the_form_and_its_error(client: TestClient) -> None:
    """It was a 404 page, "There is no page at /signin.", as the missing ``key`` failed validation."""
    for options in ({}, {"json": {}}, {"data": {"form_token": "x"}}):
        answer = client.post("/signin", **options, follow_redirects=False)
        assert answer.status_code == 403, options
        assert "This sign-in form expired or came from another site" in text_of(answer.text) and not _key_cookies(answer)
    empty = client.post("/signin", data={"key": "  ", "form_token": form_token(client.get("/signin").text)}, follow_redirects=False)
    assert empty.status_code == 400 and "Enter an API key to sign in." in text_of(empty.text) and not _key_cookies(empty)


def test_the_own_form_posted_with_an_opaque_origin_signs_in(client: TestClient) -> None:
    """Under ``Referrer-Policy: no-referrer`` (a hardening proxy's default) a browser sends ``Origin: null``
    with this site's own form: the token decides, as without an Origin."""
    alice = customer_with_a_job("alice")
    token = form_token(client.get("/signin").text)
    answer = client.post("/signin", data={"key": alice, "form_token": token}, headers={"origin": "null"}, follow_redirects=False)
    assert answer.status_code == 303 and _key_cookies(answer)


def test_a_sign_out_form_posted_from_elsewhere_is_refused(client: TestClient) -> None:
    alice = customer_with_a_job("alice")
    sign_in(client, alice)
    token = form_token(client.get("/account").text)
    forged = (({}, {}), ({"form_token": "x" * 43}, {}), ({"form_token": token}, {"origin": "http://attacker.example"}))
    for data, headers in forged:
        answer = client.post("/signout", data=data, headers=headers, follow_redirects=False)
        assert answer.status_code == 403 and "you are still signed in" in text_of(answer.text)
        assert not _key_cookies(answer) and "Signed in as alice" in text_of(client.get("/account").text)
    assert _sign_out(client).status_code == 303
    assert client.get("/account", follow_redirects=False).headers["location"] == "/signin"


def test_a_running_jobs_page_follows_its_events(client: TestClient) -> None:
    secret = customer_with_a_job("carol")
    with open_store(Settings()) as store, store.transaction() as session:
        job = session.get_one(Job, "job-carol")
        job.status, job.events = "running", job.events[:1]
    sign_in(client, secret)
    page = client.get("/account/jobs/job-carol")
    assert 'data-live="/account/jobs/job-carol/live" data-live-state="running"' in page.text
    with open_store(Settings()) as store, store.transaction() as session:
        session.add(JobEvent(job_id="job-carol", kind="progress", message="step 10 loss 2.1"))
    live = client.get("/account/jobs/job-carol/live")
    assert live.headers["X-Live"] == "running" and "progress step 10 loss 2.1" in text_of(live.text)
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Job, "job-carol").status = "succeeded"
    assert client.get("/account/jobs/job-carol/live").headers["X-Live"] == "idle"


def test_a_signed_in_customer_downloads_its_model_and_only_its_own(client: TestClient, tmp_path) -> None:  # noqa: ANN001
    import io
    import tarfile

    alice, _bob = customer_with_a_job("alice"), customer_with_a_job("bob")
    folder = tmp_path / "model-alice"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlibrary_name: peft\n---\n")
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(RegisteredModel, "model-alice").path = str(folder)
    assert client.get("/account/models/model-alice/download", follow_redirects=False).status_code == 303  # signed out
    sign_in(client, alice)
    account = client.get("/account").text
    assert 'href="/account/models/model-alice/download"' in account
    # It said downloads needed the key as a bearer token, which a browser's link cannot send: this one uses the sign-in.
    assert "A download link here uses this sign-in; a script downloads with GET /v1/models/{id}/download" in text_of(account)
    download = client.get("/account/models/model-alice/download")
    assert download.status_code == 200 and download.headers["content-disposition"] == 'attachment; filename="model-alice.tar"'
    with open_store(Settings()) as store, store.session() as session:  # the digest `trainarena models verify` checks, as the API sends it
        assert download.headers["x-trainarena-model-digest"] == session.get_one(RegisteredModel, "model-alice").digest
    with tarfile.open(fileobj=io.BytesIO(download.content)) as tar:
        assert tar.getnames() == ["model-alice/README.md"]
    assert client.get("/account/models/model-bob/download").status_code == 404


def test_a_model_whose_folder_is_gone_gets_a_page_saying_so(client: TestClient, tmp_path) -> None:  # noqa: ANN001
    alice = customer_with_a_job("alice")
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(RegisteredModel, "model-alice").path = str(tmp_path / "gone")
    sign_in(client, alice)
    download = client.get("/account/models/model-alice/download")
    assert download.status_code == 409 and "model-alice cannot be downloaded: its folder is missing" in text_of(download.text)


def test_a_deleted_model_is_listed_as_deleted_and_its_download_is_gone(client: TestClient) -> None:
    alice = customer_with_a_job("alice")
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(RegisteredModel, "model-alice").deleted_at = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    sign_in(client, alice)
    account = client.get("/account").text
    assert "<td>deleted</td>" in account and 'href="/account/models/model-alice/download"' not in account
    download = client.get("/account/models/model-alice/download")
    assert download.status_code == 410 and "model-alice cannot be downloaded: it was deleted on 2026-12-03 20:00 UTC" in text_of(download.text)


def test_the_sign_in_cookie_is_secure_over_https_or_when_the_settings_say_so(client: TestClient) -> None:
    from trainarena.web.account import FORM_COOKIE

    alice = customer_with_a_job("alice")

    def cookie(test_client: TestClient, base: str) -> str:
        form = test_client.get(f"{base}/signin")
        token = form.cookies[FORM_COOKIE]  # a Secure cookie the client keeps for https only: sent as the browser would
        answer = test_client.post(f"{base}/signin", data={"key": alice, "form_token": form_token(form.text)},
                                  headers={"cookie": f"{FORM_COOKIE}={token}"}, follow_redirects=False)  # fmt: skip
        key_cookie, form_cookie = answer.headers["set-cookie"].lower(), form.headers["set-cookie"].lower()
        assert answer.status_code == 303 and ("secure" in key_cookie) == ("secure" in form_cookie)  # both cookies alike
        return key_cookie

    assert "secure" not in cookie(client, "http://testserver") and "secure" in cookie(client, "https://testserver")
    behind_proxy = Settings().model_copy(update={"dashboard": Settings().dashboard.model_copy(update={"secure_cookie": True})})
    with open_store(behind_proxy) as store, TestClient(create_app(behind_proxy, store=store)) as proxied:
        assert "secure" in cookie(proxied, "http://testserver")  # TLS ended at the proxy: the API sees http
