"""A minimal HTML form client (requests + html.parser) that behaves like a browser on our pages: follows
redirects within the auth service, fills and submits forms, and stops at the client's redirect URI."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: list[tuple[str, str, bool]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            kind = a.get("type", "text")
            if kind == "checkbox":
                self.forms[-1].checkboxes.append((a["name"], a.get("value", "on"), "checked" in a))
            elif "name" in a:
                self.forms[-1].fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and self.forms and "name" in a:
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


class FormBrowser:
    """Follows redirects on the auth service; a redirect elsewhere (the client's callback) is returned."""

    def __init__(self, auth_base: str) -> None:
        self.auth_base = auth_base
        self.session = requests.Session()

    def open(self, url: str) -> requests.Response:
        return self._follow(self.session.get(url, allow_redirects=False, timeout=10))

    def submit(
        self,
        page: requests.Response,
        values: dict[str, str],
        *,
        button: tuple[str, str] | None = None,
        untick: set[str] = frozenset(),
    ) -> requests.Response:  # type: ignore[assignment]
        (form,) = forms(page.text)
        data = [(k, values.get(k, v)) for k, v in form.fields]
        data += [(k, v) for k, v in values.items() if k not in dict(form.fields)]
        data += [(k, v) for k, v, checked in form.checkboxes if checked and v not in untick]
        if button:
            data.append(button)
        url = urljoin(page.url, form.action)
        if form.method == "get":
            return self._follow(self.session.get(url, params=data, allow_redirects=False, timeout=10))
        return self._follow(self.session.post(url, data=data, allow_redirects=False, timeout=10))

    def _follow(self, response: requests.Response) -> requests.Response:
        while response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if not target.startswith(self.auth_base):
                return response
            response = self.session.get(target, allow_redirects=False, timeout=10)
        return response
