"""seqhub auth service: the OAuth2 authorization server.

Accounts, clients, grants (authorization code + PKCE, device, client credentials, refresh rotation), RFC 9068
JWT access tokens, JWKS, introspection, revocation, GA4GH passports.
"""
