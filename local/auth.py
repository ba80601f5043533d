"""The local token issuer: a Cognito-like user pool's key, its tokens, and the HTTP API JWT check.

The key pair (RS256, as Cognito signs) is generated once and kept in the data folder, so a token
pasted into a shell keeps working across restarts. Verification is what an HTTP API JWT
authorizer does before any function runs: a known `kid`, the RS256 signature, the issuer, the
audience (`aud`, or `client_id` for an access token) and the expiry (`nbf` and `iat` too when
present), all against the wall clock. The claims are then handed over as the authorizer does:
every value a string, a list as `[a b]`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from local.keyfiles import read_or_create

# The shape of the deployed issuer (template.yaml: https://cognito-idp.<region>.amazonaws.com/<pool>).
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_local"
AUDIENCE = "local-dashboard"  # the user pool client id the authorizer expects
ALGORITHM = "RS256"
BILLING_GROUP = "billing"
DEFAULT_TTL_SECONDS = 12 * 60 * 60
MAX_TTL_SECONDS = 24 * 60 * 60  # Cognito's longest ID token validity


class Issuer:
    """Mints and verifies the local user pool's tokens. The private key lives in `key_file`."""

    def __init__(self, key_file: Path, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key = _load_or_create(key_file)
        self._keys = KeySet([self.key])

    def jwks(self) -> dict[str, Any]:
        """The public keys, as Cognito publishes them at `/.well-known/jwks.json`."""
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "alg": ALGORITHM, "use": "sig"}]}

    def mint(
        self,
        account_id: str,
        *,
        user_id: str | None = None,
        billing_access: bool = False,
        expires_in: int = DEFAULT_TTL_SECONDS,
        now: int | None = None,
        groups: Sequence[str] | None = None,
        email: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A signed ID token of a user of `account_id` (and its claims): what the dashboard
        sends after a Cognito sign-in. `groups` (the user pool's) replace `billing_access`."""
        issued = int(time.time()) if now is None else now
        sub = user_id or f"{account_id}-user"
        claims: dict[str, Any] = {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.audience,
            "token_use": "id",
            "custom:account_id": account_id,
            "cognito:username": sub,
            "auth_time": issued,
            "iat": issued,
            "exp": issued + expires_in,
        }
        found = list(groups) if groups is not None else ([BILLING_GROUP] if billing_access else [])
        if found:
            # Cognito leaves the claim out for a user in no group.
            claims["cognito:groups"] = found
        if email is not None:
            claims["email"] = email
            claims["email_verified"] = True
        header = {"alg": ALGORITHM, "kid": self.key.kid}
        return jwt.encode(header, claims, self.key, algorithms=[ALGORITHM]), claims

    def verify(self, token: str, now: int | None = None) -> dict[str, Any] | None:
        """The claims of a token this issuer signed and that is valid now; None otherwise."""
        try:
            decoded = jwt.decode(token, self._keys, algorithms=[ALGORITHM])
            if decoded.header.get("kid") != self.key.kid:
                return None
            claims = decoded.claims
            registry = jwt.JWTClaimsRegistry(
                now=int(time.time()) if now is None else now,
                iss={"essential": True, "value": self.issuer},
                exp={"essential": True},
            )
            registry.validate(claims)
        except (JoseError, ValueError):
            return None
        if not self._for_us(claims):
            return None
        return claims

    def _for_us(self, claims: Mapping[str, Any]) -> bool:
        # The HTTP API authorizer accepts a token whose `aud` or `client_id` is an audience.
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience or []
        return self.audience in audiences or claims.get("client_id") == self.audience

    def authenticate(self, headers: Mapping[str, str]) -> dict[str, str] | None:
        """The `Authenticate` of `local.gateway.Gateway`: the authorizer's claims, or None (401)."""
        value = headers.get("authorization", "").strip()
        scheme, _, rest = value.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else value
        if not token:
            return None
        claims = self.verify(token)
        return authorizer_claims(claims) if claims is not None else None


def authorizer_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as an HTTP API JWT authorizer puts them in the event: strings, lists as `[a b]`."""
    return {name: _claim_text(value) for name, value in claims.items()}


def _claim_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _load_or_create(key_file: Path) -> RSAKey:
    def generate() -> str:
        key = RSAKey.generate_key(2048, parameters={"alg": ALGORITHM, "use": "sig"}, auto_kid=True)
        return json.dumps(key.as_dict(private=True))

    # The private key: readable by its owner only.
    return RSAKey.import_key(json.loads(read_or_create(key_file, generate)))
