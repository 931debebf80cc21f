"""Server-rendered pages of the auth service: login, consent, device code entry, messages.

Plain HTML with every value escaped; no JavaScript. Each form carries a CSRF token (the login form a
double-submit cookie value, the others the session's token). Pure string building: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem} label{display:block;margin:.8rem 0 .2rem}
input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem}
button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem;font-size:1rem}
.error{color:#a00} ul.scopes{list-style:none;padding:0} ul.scopes li{margin:.4rem 0}
code{font-size:.85rem;color:#555}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)} · seqhub</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _hidden(params: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<input type=hidden name='{escape(k)}' value='{escape(v)}'>" for k, v in params)


def _error(message: str | None) -> str:
    return f"<p class=error role=alert>{escape(message)}</p>" if message else ""


def login_page(*, action: str, next_url: str, csrf: str, error: str | None = None, username: str = "") -> str:
    return _page(
        "Sign in to seqhub",
        _error(error)
        + f"<form method=post action='{escape(action)}'>"
        + _hidden([("next", next_url), ("csrf", csrf)])
        + "<label for=username>User name</label>"
        + "<input type=text id=username name=username autocomplete=username required "
        + f"value='{escape(username)}'>"
        + "<label for=password>Password</label>"
        + "<input type=password id=password name=password autocomplete=current-password required>"
        + "<button type=submit id=signin>Sign in</button></form>",
    )


def consent_page(
    *,
    action: str,
    client_name: str,
    client_id: str,
    username: str,
    scopes: list[tuple[str, str]],
    params: Iterable[tuple[str, str]],
    csrf: str,
) -> str:
    items = (
        "".join(
            f"<li><label><input type=checkbox name=grant_scope value='{escape(name)}' checked> "
            f"{escape(words)} <code>{escape(name)}</code></label></li>"
            for name, words in scopes
        )
        or "<li>only to confirm who you are (no access to your data)</li>"
    )
    return _page(
        f"{client_name} wants access to your seqhub account",
        f"<p>Signed in as <b>{escape(username)}</b>. The application <b>{escape(client_name)}</b> "
        f"(<code>{escape(client_id)}</code>) asks to:</p>"
        f"<form method=post action='{escape(action)}'><ul class=scopes>{items}</ul>"
        + _hidden([*params, ("csrf", csrf)])
        + "<p>Untick anything you do not want to allow.</p>"
        "<button type=submit name=decision value=approve id=approve>Allow</button>"
        "<button type=submit name=decision value=deny id=deny>Deny</button></form>",
    )


def device_code_page(*, action: str, csrf: str, user_code: str = "", error: str | None = None) -> str:
    return _page(
        "Connect a device",
        _error(error)
        + "<p>Enter the code shown on your device or terminal.</p>"
        + f"<form method=get action='{escape(action)}'>"
        + "<label for=user_code>Code</label>"
        + f"<input type=text id=user_code name=user_code required value='{escape(user_code)}' "
        + "autocomplete=off autocapitalize=characters>"
        + "<button type=submit id=continue>Continue</button></form>",
    )


def device_consent_page(
    *,
    action: str,
    client_name: str,
    client_id: str,
    username: str,
    user_code: str,
    scopes: list[tuple[str, str]],
    csrf: str,
) -> str:
    return consent_page(
        action=action,
        client_name=client_name,
        client_id=client_id,
        username=username,
        scopes=scopes,
        params=[("user_code", user_code)],
        csrf=csrf,
    ).replace(
        "Untick anything you do not want to allow.",
        f"Only allow this if you started a sign-in showing the code <b>{escape(user_code)}</b>.",
    )


def message_page(title: str, message: str) -> str:
    return _page(title, f"<p>{escape(message)}</p>")
