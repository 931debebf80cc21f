"""seqhub auth service: the OAuth2 authorization server: accounts, clients, grants, JWT access tokens, JWKS, introspection, revocation, passports."""
