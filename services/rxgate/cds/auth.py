"""The EHR's bearer token (CDS Hooks 2.0, "Trusting CDS Clients"), verified with PyJWT.

A service call carries `Authorization: Bearer <JWT>` signed by the EHR with an asymmetric key
(RS/ES/PS 256-512; never `none` nor an HMAC secret). The token's `iss` must be a configured issuer;
its signature must verify with a key of that issuer's JWK Set (by `kid`); `aud`, `exp`, `iat`
and `jti` are required (the spec's payload table); `exp` must not be past (60 s leeway). When
`RXGATE_CDS_AUDIENCE` is set, `aud` must be the URL of the endpoint called (for feedback, the
feedback URL or its service's URL). The `jku` header is ignored: keys come only from
the configured JWKS URL, never from the token itself. A token is good for one call: a `jti`
seen before from the same issuer (until its `exp`) is a replay and is refused (per process).
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, unquote

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]
LEEWAY_S = 60


class Unauthorized(Exception):
    """The request is not from a trusted EHR; the message says why (no secrets, no patient data)."""


@dataclass(frozen=True)
class Caller:
    issuer: str
    subject: str
    token_id: str


class _FileJwks:
    """A JWK Set from a file (for closed networks and tests); read again when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._set: PyJWKSet | None = None
        self._lock = threading.Lock()

    def get_signing_key(self, kid: str) -> PyJWK:
        with self._lock:
            mtime = self.path.stat().st_mtime
            if self._set is None or mtime != self._mtime:
                self._set = PyJWKSet.from_dict(json.loads(self.path.read_text()))
                self._mtime = mtime
            keys = self._set.keys
        for key in keys:
            if key.key_id == kid:
                return key
        raise Unauthorized("no key of the issuer's JWKS matches the token's kid")


class _SeenTokens:
    """(iss, jti) of accepted tokens until they expire, at most `capacity` of them."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, iss: str, jti: str, exp: float) -> bool:
        now = time.time()
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - LEEWAY_S
                                  or len(self._seen) > self.capacity):
                self._seen.popitem(last=False)
            if (iss, jti) in self._seen:
                return False
            self._seen[(iss, jti)] = exp
            return True


class TokenVerifier:
    def __init__(self, issuers: dict[str, str], audience: str | None = None,
                 timeout: float = 5.0) -> None:
        self.audience = audience
        self._seen = _SeenTokens()
        self._jwks = {}
        for iss, url in issuers.items():
            if url.startswith("file://"):
                self._jwks[iss] = _FileJwks(Path(unquote(urlparse(url).path)))
            else:
                self._jwks[iss] = PyJWKClient(url, cache_keys=True, lifespan=300, timeout=timeout)

    def verify(self, authorization: str | None, service_url: str | list[str] | None) -> Caller:
        """The caller of a request with this Authorization header; raises Unauthorized."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("a Bearer token is required")
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthorized("the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized(f"algorithm {header.get('alg')!r} is not accepted")
        iss = claims.get("iss")
        source = self._jwks.get(iss) if isinstance(iss, str) else None
        if source is None:
            raise Unauthorized("unknown issuer")
        if not isinstance(header.get("kid"), str):
            raise Unauthorized("the token header has no kid")
        try:
            key = source.get_signing_key(header["kid"])
        except Unauthorized:
            raise
        except (jwt.PyJWTError, OSError, ValueError) as e:
            raise Unauthorized(f"the issuer's keys cannot be read ({type(e).__name__})") from None
        declared = getattr(key, "_jwk_data", {}).get("alg")
        if declared and declared != header["alg"]:
            raise Unauthorized("the token's algorithm is not the one its key is for")
        options = {"require": ["iss", "aud", "exp", "iat", "jti"], "verify_aud": self.audience is not None}
        try:
            verified = jwt.decode(
                token, key=key.key, algorithms=[header["alg"]], issuer=iss, leeway=LEEWAY_S,
                audience=service_url if self.audience is not None else None, options=options)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the token is for another service (aud)") from None
        except jwt.PyJWTError as e:
            raise Unauthorized(f"the token does not verify ({type(e).__name__})") from None
        if not self._seen.first_use(iss, str(verified["jti"]), float(verified["exp"])):
            raise Unauthorized("the token was already used (jti replay)")
        return Caller(issuer=iss, subject=str(verified.get("sub") or iss), token_id=str(verified.get("jti")))
