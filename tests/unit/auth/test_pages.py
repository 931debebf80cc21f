"""Server-rendered pages: every value is escaped, forms carry the CSRF token, scopes are in plain words."""

from services.auth import pages


def test_values_are_escaped() -> None:
    evil = "'><script>alert(1)</script>"
    html = pages.consent_page(
        action="/auth/authorize",
        client_name=evil,
        client_id="c1",
        username=evil,
        scopes=[("repository:read", evil)],
        params=[("state", evil)],
        csrf="tok",
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    login = pages.login_page(action="/auth/login", next_url=evil, csrf="tok", error=evil, username=evil)
    assert "<script>" not in login


def test_consent_form_lists_scopes_and_carries_csrf_and_original_parameters() -> None:
    html = pages.consent_page(
        action="/auth/authorize",
        client_name="Genome Browser",
        client_id="gb",
        username="alice",
        scopes=[("project:P1:read", "read project P1")],
        params=[("client_id", "gb"), ("state", "s")],
        csrf="tok123",
    )
    assert "read project P1" in html and "name=grant_scope value='project:P1:read'" in html
    assert "value='tok123'" in html and "name='state' value='s'" in html
    assert "value=approve" in html and "value=deny" in html


def test_pages_forbid_framing() -> None:
    assert pages.SECURITY_HEADERS["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in pages.SECURITY_HEADERS["Content-Security-Policy"]
