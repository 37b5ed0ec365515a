"""Support clicked as people do it, on one long-running server with two orgs: an agent opens a
ticket, a platform admin works it in the queue (assigns, replies, adds an internal note), and an
org admin's number request is approved once. Each person has a device of their own (a browser
context); after signing in nobody types a URL.

What the org sees is the org console's thread: the platform's reply, never the internal note; the
other org never sees the ticket at all. No page may log a console error or a CSP violation.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import Console
from tests.factories import make_org, make_user
from vsync.extensions import db

ROOT = "root@support.test"
OURS, THEIRS = "alder", "birch"
SUBJECT = "Calls to the sales line drop after a minute"
FIRST_MESSAGE = "Since Monday every inbound call to sales is cut off at about sixty seconds."
REPLY = "We found the trunk timeout and raised it; please try again."
NOTE = "Carrier ticket CX-4471 opened; do not share the carrier's name."
NEW_NUMBER = "+12125550177"
REQUEST_SUBJECT = "New number in US (212)"

ORG_MENU = "#admin-navbar-collapse ul.mr-auto > li > a.nav-link"


def email(role: str, slug: str) -> str:
    return f"{role.replace('_', '-')}@{slug}.test"


@pytest.fixture
def two_orgs(app):
    with app.app_context():
        for slug in (OURS, THEIRS):
            make_org(slug, "America/New_York")
            for role in ("org_admin", "agent"):
                make_user(email(role, slug), org_slug=slug, role=role)
        make_user(ROOT, platform_admin=True)
        db.session.remove()


@pytest.fixture
def device(browser, live_server, artifacts, two_orgs):
    """A new device: a browser context of its own, driven as the console. All of them are checked
    for console errors when the test ends."""
    consoles: list[Console] = []

    def open_device(page=None) -> Console:
        """A new context's page, or `page` (another tab of a device)."""
        page = page or browser.new_context().new_page()
        page.set_default_timeout(10_000)
        consoles.append(Console(page, live_server, artifacts))
        return consoles[-1]

    yield open_device
    errors = [error for console in consoles for error in console.errors]
    for context in {console.page.context for console in consoles}:
        context.close()
    assert errors == []


def _click(page, selector: str, name: str) -> None:
    with page.expect_navigation():
        page.locator(selector).filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")).click()


def _menu(console: Console, dropdown: str, name: str) -> None:
    console.page.click(f"#admin-navbar-collapse .dropdown-toggle:has-text('{dropdown}')")
    _click(console.page, f"#admin-navbar-collapse li.dropdown:has(> a:has-text('{dropdown}')) a.dropdown-item", name)


def _org_menu(console: Console, name: str) -> None:
    _click(console.page, ORG_MENU, name)


def _platform_menu(console: Console, name: str) -> None:
    _menu(console, "Platform", name)


def _submit(console: Console, card: str, button: str) -> None:
    with console.page.expect_navigation():
        console.page.locator(card).get_by_role("button", name=button).click()


def _view_link(console: Console, text: str):
    """The eye icon of the list's row showing `text`."""
    return console.page.locator("table.model-list tbody tr", has_text=text).locator("a[title='View Record']")


def _open_row(console: Console, text: str) -> None:
    with console.page.expect_navigation():
        _view_link(console, text).click()


def _search_queue(console: Console, text: str, org: str) -> None:
    """In the platform queue, search the subjects for `text`: one ticket is found, `org`'s."""
    _platform_menu(console, "Support queue")
    console.page.fill("input[name=search]", text)
    with console.page.expect_navigation():
        console.page.press("input[name=search]", "Enter")
    rows = console.page.locator("table.model-list tbody tr")
    assert rows.count() == 1 and org in rows.inner_text()


def _thread(console: Console) -> str:
    return " ".join(console.page.locator(".ticket-message").all_inner_texts())


def _signed_in(device, who: str) -> Console:
    console = device()
    console.sign_in(who)
    return console


def test_an_agents_ticket_is_worked_in_the_queue_and_the_org_sees_the_reply_but_not_the_note(device):
    agent = _signed_in(device, email("agent", OURS))
    _org_menu(agent, "Support")
    form = agent.page.locator(".ticket-open")
    form.get_by_label("Subject").fill(SUBJECT)
    form.get_by_label("Category").select_option("problem")
    form.get_by_label("Priority").select_option("high")
    form.get_by_label("Message").fill(FIRST_MESSAGE)
    _submit(agent, ".ticket-open", "Open ticket")
    agent.expect_flash(re.compile(r"Ticket #\d+ opened"))
    assert FIRST_MESSAGE in _thread(agent)
    _org_menu(agent, "Support")
    row = agent.page.locator("table.model-list tbody tr", has_text=SUBJECT)
    assert "high" in row.inner_text() and "open" in row.inner_text()
    _open_row(agent, SUBJECT)
    assert FIRST_MESSAGE in _thread(agent)
    agent.shot("support-agent-opened")

    root = _signed_in(device, ROOT)
    _search_queue(root, "sales line", OURS)
    _open_row(root, SUBJECT)
    root.page.select_option("#assign-assignee", label=ROOT)
    _submit(root, "form[action$='/assign']", "Assign")
    root.expect_flash("Ticket assigned.")
    assert root.page.locator("#assign-assignee option:checked").inner_text() == ROOT
    root.page.locator(".ticket-reply").get_by_label("Reply").fill(REPLY)
    _submit(root, ".ticket-reply", "Reply to the organisation")
    root.expect_flash("Reply sent.")
    root.page.locator(".ticket-note").get_by_label("Internal note").fill(NOTE)
    _submit(root, ".ticket-note", "Add internal note")
    root.expect_flash("Note added.")
    assert REPLY in _thread(root) and NOTE in root.page.locator(".internal-note").inner_text()
    _search_queue(root, "sales line", OURS)  # the queue's row names its assignee now
    assert ROOT in root.page.locator("table.model-list tbody tr").inner_text()
    root.shot("support-queue-worked")

    agent.sign_out()
    agent.sign_in(email("agent", OURS))  # signed in again: the reply is there, the note is not
    _org_menu(agent, "Support")
    _open_row(agent, SUBJECT)
    assert REPLY in _thread(agent) and "(platform support)" in _thread(agent)
    assert NOTE not in agent.page.content() and "CX-4471" not in agent.page.content()
    assert agent.page.locator(".internal-note").count() == 0

    for role in ("org_admin", "agent"):
        other = _signed_in(device, email(role, THEIRS))
        _org_menu(other, "Support")
        assert SUBJECT not in other.page.content() and "sales line" not in other.page.content()
        assert "No tickets yet" in other.page.content()


def test_an_org_admins_number_request_is_approved_once_and_the_number_joins_the_org(device):
    admin = _signed_in(device, email("org_admin", OURS))
    _org_menu(admin, "Support")
    form = admin.page.locator(".number-request")
    form.get_by_label("Request").select_option(label="a new number")
    form.get_by_label("Country (new)").fill("US")
    form.get_by_label("Area code or pattern (new)").fill("212")
    form.get_by_label("Label (new)").fill("Sales overflow")
    form.get_by_label("Message").fill("A second line for the sales team, please.")
    _submit(admin, ".number-request", "Send request")
    admin.expect_flash(re.compile(r"Number request #\d+ sent"))
    assert "pending" in admin.page.locator(".number-request-fields .decision").inner_text()
    assert REQUEST_SUBJECT in admin.page.locator("table.searchable").inner_text()

    root = _signed_in(device, ROOT)
    _search_queue(root, "New number", OURS)
    # The ticket opened in a second tab first: there it is still pending when the first tab approves.
    with root.page.context.expect_page() as opened:
        _view_link(root, REQUEST_SUBJECT).click(modifiers=["Control"])
    late = device(page=opened.value)
    late.page.wait_for_load_state()
    with root.page.expect_navigation():
        _view_link(root, REQUEST_SUBJECT).click()

    root.page.locator(".number-approve").get_by_label("Number to give").fill(NEW_NUMBER)
    _submit(root, ".number-approve", "Approve and carry out")
    root.expect_flash("Number request approved and carried out.")
    assert root.page.locator(".number-request-fields .decision").inner_text().startswith("approved")
    assert NEW_NUMBER in root.page.locator(".number-request-fields").inner_text()
    assert root.page.locator(".number-approve, .number-refuse").count() == 0  # no second approval offered

    _submit(late, ".number-approve", "Approve and carry out")  # the tab opened before the approval
    late.expect_flash(f"This request was approved already, by {ROOT}.")
    assert late.page.locator(".number-approve").count() == 0
    late.shot("support-second-approval-refused")

    _menu(admin, "Organisation", "Numbers")
    numbers = admin.page.locator("table.model-list tbody").inner_text()
    assert NEW_NUMBER in numbers and "Sales overflow" in numbers and "→ now" in numbers
    _org_menu(admin, "Support")
    _open_row(admin, REQUEST_SUBJECT)
    assert admin.page.locator(".number-request-fields .decision").inner_text().startswith("approved")
    assert f"Approved: {NEW_NUMBER} assigned to this organisation." in _thread(admin)

    other = _signed_in(device, email("org_admin", THEIRS))
    _menu(other, "Organisation", "Numbers")
    assert NEW_NUMBER not in other.page.content()
