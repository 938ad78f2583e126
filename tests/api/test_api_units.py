"""Fast unit tests: token signing, the client registry, the rate limiter, geometry, error bodies."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from opencem.api.ratelimit import RateLimiter
from opencem.api.security import ClientRegistry, TokenIssuer, check_secret, hash_secret
from opencem.api.shapes import Shape, geohash_bbox, geohash_encode, in_polygon, is_simple, overlap, polygon_area_m2
from opencem.errors import InputError


@pytest.fixture
def registry(tmp_path):
    return ClientRegistry.of(tmp_path)


def test_secrets_are_stored_only_as_salted_hashes(registry):
    secret = registry.add("app1", ["nps:read"], "analytics")
    text = registry.path.read_text()
    assert secret not in text
    stored = json.loads(text)["clients"][0]["secret_hash"]
    assert stored.startswith("scrypt$") and check_secret(secret, stored)
    assert not check_secret(secret + "x", stored)
    assert hash_secret(secret) != hash_secret(secret)  # a fresh salt each time
    assert registry.authenticate("app1", secret) is not None
    assert registry.authenticate("app1", "wrong") is None
    assert registry.authenticate("nobody", secret) is None


@pytest.mark.parametrize("kwargs, words", [
    ({"client_id": "bad id!", "scopes": ["nps:read"], "purpose": "x"}, "client id"),
    ({"client_id": "a", "scopes": ["everything:write"], "purpose": "x"}, "unknown scope"),
    ({"client_id": "a", "scopes": [], "purpose": "x"}, "unknown scope"),
    ({"client_id": "a", "scopes": ["nps:read"], "purpose": "  "}, "purpose"),
    ({"client_id": "a", "scopes": ["nps:read"], "purpose": "x", "rate_per_s": 0}, "above 0"),
])
def test_bad_client_registrations_are_refused_clearly(registry, kwargs, words):
    with pytest.raises(InputError, match=words):
        registry.add(**kwargs)


def test_a_client_id_cannot_be_registered_twice_while_active(registry):
    registry.add("app1", ["nps:read"], "x")
    with pytest.raises(InputError, match="exists"):
        registry.add("app1", ["nps:read"], "x")
    registry.revoke("app1")
    with pytest.raises(InputError, match="revoked already"):
        registry.revoke("app1")
    registry.add("app1", ["nps:read"], "x")  # a new secret for the same id after revocation
    assert registry.get("app1").active


def test_tokens_are_signed_scoped_and_expire(registry):
    secret = registry.add("app1", ["nps:read", "twin:read"], "analytics")
    issuer = TokenIssuer(b"k" * 32, registry)
    token, ttl = issuer.issue(registry.authenticate("app1", secret), ["nps:read"])
    claims, client = issuer.verify(token)
    assert client.client_id == "app1" and claims["sub"] == "app1" and claims["scope"] == "nps:read" and claims["purpose"] == "analytics"
    assert claims["exp"] - claims["iat"] == ttl
    # another key, a changed payload, an expired token, the "none" algorithm: all refused
    assert TokenIssuer(b"x" * 32, registry).verify(token) is None
    head, body, sig = token.split(".")
    assert issuer.verify(".".join([head, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"), sig])) is None
    expired = jwt.encode({**claims, "iat": 1, "nbf": 1, "exp": 2}, b"k" * 32, algorithm="HS256")
    assert issuer.verify(expired) is None
    issuer._verified[expired] = {**claims, "exp": 2}  # even if it were in the cache, an expired token is checked again
    assert issuer.verify(expired) is None
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert issuer.verify(unsigned) is None


def test_a_revoked_clients_tokens_stop_working(registry):
    secret = registry.add("app1", ["nps:read"], "x")
    issuer = TokenIssuer(b"k" * 32, registry)
    token, _ = issuer.issue(registry.authenticate("app1", secret), ["nps:read"])
    assert issuer.verify(token) is not None
    assert issuer.verify(token) is not None  # a second time: from the issuer's cache of checked tokens
    ClientRegistry.of(registry.path.parent.parent).revoke("app1")  # another process's registry
    time.sleep(registry.recheck_s + 0.05)  # the file's change is looked for at most every recheck_s
    assert issuer.verify(token) is None
    assert registry.authenticate("app1", secret) is None


def test_rate_limiter_allows_a_burst_then_says_how_long_to_wait():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.check("a", rate=2.0, burst=3) for _ in range(3)] == [None, None, None]
    assert limiter.check("a", rate=2.0, burst=3) == 1  # one token comes back in 0.5 s: Retry-After 1
    assert limiter.check("b", rate=2.0, burst=3) is None  # per client
    now[0] += 0.5
    assert limiter.check("a", rate=2.0, burst=3) is None
    assert limiter.check("a", rate=0.1, burst=3) == 10  # empty bucket at 0.1/s: 10 s


def test_geohash_matches_the_reference_example():
    # the geohash system's own example: 57.64911, 10.40744 is u4pruydqqvj
    assert geohash_encode(57.64911, 10.40744, 11) == "u4pruydqqvj"
    la0, lo0, la1, lo1 = geohash_bbox("u4pruydqqvj")
    assert la0 <= 57.64911 <= la1 and lo0 <= 10.40744 <= lo1
    assert geohash_encode(-33.9, 151.2, 5)[0] == "r"


def test_polygon_geometry():
    square = [(45.0, 4.0), (45.0, 4.01), (45.01, 4.01), (45.01, 4.0)]
    assert in_polygon((45.005, 4.005), square) and not in_polygon((45.02, 4.005), square)
    assert polygon_area_m2(square) == pytest.approx(1112 * 787, rel=0.01)
    assert is_simple(square)
    assert not is_simple([(45.0, 4.0), (45.01, 4.01), (45.0, 4.01), (45.01, 4.0)])  # a bow tie


def test_overlap_of_estimates_and_requested_areas():
    est = Shape(center=(45.0, 4.0), radius_m=500)
    assert overlap(est, Shape(center=(45.0, 4.0), radius_m=5000)) == 1.0
    assert overlap(est, Shape(center=(45.5, 4.0), radius_m=5000)) == 0.0
    half = overlap(est, Shape(boundary=[(44.9, 3.9), (44.9, 4.0), (45.1, 4.0), (45.1, 3.9)]))
    assert 0.4 < half < 0.6
    inside = overlap(est, Shape(center=(45.0, 4.0), radius_m=100))  # the request lies inside the estimate
    assert 0 < inside < 0.1
