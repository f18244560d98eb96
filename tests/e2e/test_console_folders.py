"""Storage folders in a real browser (Playwright, Debian's Chromium) against the shared real server: a user creates
a folder, uploads a file in the file browser, shares the folder read-only; the colleague accepts the invitation,
browses and downloads the file and has no upload or delete; the owner deletes the file and trashes the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.clitools import unique
from e2e.test_console_quality import WIDTHS, artifacts_dir, check_page
from e2e.test_console_workspaces import browser, sign_in  # noqa: F401 - the browser fixture

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e


def test_the_file_browser(browser, new_user, tmp_path):  # noqa: F811
    expect = playwright_api.expect
    owner, owner_password, _ = new_user("fowner")
    colleague, colleague_password, _ = new_user("fguest")
    name = unique("papers")
    upload = tmp_path / "notes.txt"
    upload.write_text("shared notes\n")

    page = browser()
    sign_in(page, owner, owner_password)
    page.goto("/ui/folders")
    form = page.get_by_test_id("create-folder-form")
    form.locator("#name").fill(name)
    form.get_by_role("button", name="Create folder").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    page.get_by_test_id("upload-form").locator("#file").set_input_files(str(upload))
    page.get_by_test_id("upload").click()
    expect(page.get_by_test_id("file-notes.txt")).to_be_visible()
    share = page.get_by_test_id("share-form")
    share.locator("#user").fill(colleague)
    share.locator("#share-permission").select_option("ro")
    share.get_by_role("button", name="Invite").click()
    expect(page.get_by_text(f"Invited {colleague} (ro).")).to_be_visible()

    guest = browser()
    sign_in(guest, colleague, colleague_password)
    guest.goto("/ui/folders")
    guest.get_by_test_id("received-invitations").get_by_role("button", name="Accept").click()
    guest.get_by_role("link", name=name).click()
    expect(guest.get_by_test_id("my-permission")).to_have_text("ro")
    expect(guest.get_by_test_id("upload-form")).to_have_count(0)
    expect(guest.get_by_test_id("delete-notes.txt")).to_have_count(0)
    with guest.expect_download() as download:
        guest.get_by_test_id("file-notes.txt").click()
    assert Path(download.value.path()).read_text() == "shared notes\n"

    # both pages are axe-clean and fit a desktop and a phone
    problems = []
    folder_url = page.url
    for label, size in WIDTHS.items():
        page.set_viewport_size(size)
        for path in ("/ui/folders", folder_url):
            page.goto(path)
            problems += check_page(page, path, label, artifacts_dir(), name=f"folders-{path.rsplit('/', 1)[-1]}")
    assert not problems, "\n".join(problems)
    page.set_viewport_size(WIDTHS["desktop"])
    page.goto(folder_url)
    page.get_by_test_id("delete-notes.txt").click()  # confirmed by the dialog handler
    expect(page.get_by_test_id("file-notes.txt")).to_have_count(0)
    page.get_by_test_id("trash-folder").click()
    page.get_by_test_id("trash-tab").click()
    expect(page.get_by_role("link", name=name)).to_be_visible()
