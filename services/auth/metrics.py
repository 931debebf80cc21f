"""Domain metrics of the auth service (Prometheus, low-cardinality labels only; no user or client ids)."""

from __future__ import annotations

from prometheus_client import Counter

GRANT_TYPES = frozenset(
    {"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"}
)
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "authorization_pending",
        "slow_down",
        "access_denied",
        "expired_token",
    }
)

TOKENS_ISSUED = Counter("seqhub_auth_tokens_issued_total", "Access tokens issued by the token endpoint", ["grant_type"])
TOKEN_ERRORS = Counter("seqhub_auth_token_errors_total", "Token endpoint error responses by RFC error code", ["error"])
LOGINS = Counter("seqhub_auth_logins_total", "Sign-in attempts on the login page", ["outcome"])
REUSE_DETECTED = Counter(
    "seqhub_auth_reuse_detected_total", "Reused authorization codes / refresh tokens (each revoked its grant)", ["kind"]
)


def count_token_response(grant_type: str | None, status: int, body: object) -> None:
    if status == 200:
        TOKENS_ISSUED.labels(grant_type=grant_type if grant_type in GRANT_TYPES else "other").inc()
        return
    error = body.get("error") if isinstance(body, dict) else None
    TOKEN_ERRORS.labels(error=error if error in OAUTH_ERRORS else "other").inc()
