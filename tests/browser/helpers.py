"""What the browser walk repeats: signing in and out, screenshots, and the browser's error log,
Content-Security-Policy violations included."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.factories import PASSWORD

# Every document reports each `securitypolicyviolation` event (an inline script, style or handler
# refused, a source outside the policy) to the test, before any script of the page runs.
CSP_LISTENER = """document.addEventListener("securitypolicyviolation", function (e) {
  window.vsyncCspViolation(e.effectiveDirective + " refused " + (e.blockedURI || "inline") + " at "
    + e.sourceFile + ":" + e.lineNumber + (e.sample ? " (" + e.sample + ")" : ""));
}, true);"""


class Console:
    """A page of the console driven as a person would, collecting every console error it shows and
    every Content-Security-Policy violation (the event, and the browser's message about it)."""

    def __init__(self, page, base_url: str, artifacts):
        self.page, self.base_url, self.artifacts = page, base_url, artifacts
        self.errors: list[str] = []
        self.refusals: set[str] = set()  # pages opened to see them refused: their 4xx is no error
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.expose_function("vsyncCspViolation", lambda text: self.errors.append(f"{page.url}: CSP: {text}"))
        page.add_init_script(CSP_LISTENER)

    def _console(self, kind: str, text: str) -> None:
        csp = "Content Security Policy" in text
        if csp or (kind == "error" and not self._refused(self.page.url, text)):
            self.errors.append(f"{self.page.url}: {text}")

    def open(self, path: str, shot: str | None = None):
        response = self.page.goto(self.base_url + path)
        if shot:
            self.shot(shot)
        return response

    def _refused(self, url: str, text: str) -> bool:
        return url in self.refusals and re.search(r"status of 4\d\d", text) is not None

    def open_refused(self, path: str, shot: str | None = None):
        """Open a page this user may not see; its 403 (or other 4xx) is what the test expects."""
        self.refusals.add(self.base_url + path)
        return self.open(path, shot)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.open("/login")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")

    def sign_out(self) -> None:
        self.page.wait_for_load_state()  # the menu opens by the page's script, once it has loaded
        self.page.click("#user-menu")
        self.page.click("form[action='/logout'] button")
        self.page.wait_for_url(re.compile(r".*/login.*"))

    def expect_flash(self, text: str | re.Pattern[str]) -> None:
        """Wait until the page shows a flash message containing `text`: the page a submitted form leads
        to may still be on its way when the click returns."""
        expect(self.page.locator(".alert, .flash", has_text=text).first).to_be_visible()
