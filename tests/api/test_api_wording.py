"""Refusals speak the API's own words (QA 17): a bad hotkey names the body field, not the CLI's flag;
a page too large says how that list pages on; a number too long for Python is refused without
Python's advice."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_bad_hotkey_names_the_body_field_and_counts_in_english(jobs_client: TestClient, auth: dict) -> None:
    body = {"name": "eve", "repo": "/no/such/repo", "commit": "a" * 40, "hotkey": "x"}
    refused = jobs_client.post("/v1/competitors", headers=auth["operator"], json=body)
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]
    assert message.startswith("hotkey: SS58 address 'x' is too short (1 character):"), message
    assert "--hotkey" not in message


def test_a_limit_over_the_page_size_says_how_the_list_pages_on(jobs_client: TestClient, auth: dict) -> None:
    huge = 10**23
    for path, paging in (("/v1/files", "after (the id of a page's last item)"), ("/v1/jobs", "after (the id of a page's last item)"),
                         ("/v1/tournaments", "offset")):  # fmt: skip
        refused = jobs_client.get(path, headers=auth["operator"], params={"limit": huge})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["message"].endswith(f"ask for fewer and page with {paging}"), (path, refused.text)


def test_a_number_too_long_to_read_is_refused_in_plain_words(jobs_client: TestClient, auth: dict) -> None:
    rows = "".join(f'{{"q": "{i}+1", "a": "{i + 1}"}}\n' for i in range(30)) + '{"q": "x", "a": ' + "9" * 5001 + "}\n"
    refused = jobs_client.post("/v1/files", headers=auth["customer"], files={"file": ("long.jsonl", rows.encode())})
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]
    assert message == ("long.jsonl: line 31 holds a number of more than 4300 digits, longer than a dataset's numbers may be; "
                       "write it in quotes if it is text")  # fmt: skip
