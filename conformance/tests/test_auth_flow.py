"""The web UI's cookie flow, with plain httpx (no caterva2 client in between).

register -> login (cookie) -> use the cookie -> logout (cookie cleared) -> the
old token still works (JWTs are stateless, protocol.md §3.2 and S21); bad
credentials; forgot-password -> the reset link from the server log -> reset ->
login with the new password; bad reset tokens.  protocol.md §3.2, §3.3.
"""

import io
import json

import blosc2
import httpx
import numpy as np
import pytest

from loginmode import start_server

RESET_LINK = r"reset-password/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)"
USER_KEYS = {"id", "email", "is_active", "is_superuser", "is_verified"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("auth-flow"))
    try:
        s.add_user("known@example.com", "knownpass1", superuser=False)
        yield s
    finally:
        s.close()


def cookie_attributes(set_cookie):
    """(name, value, {attribute-lowercase: value}) of one Set-Cookie header."""
    first, *attrs = [p.strip() for p in set_cookie.split(";")]
    name, _, value = first.partition("=")
    out = {}
    for a in attrs:
        k, _, v = a.partition("=")
        out[k.strip().lower()] = v.strip()
    return name, value, out


def login(http, email, password):
    return http.post("/auth/jwt/login", data={"username": email, "password": password})


def test_register_login_use_logout(srv):
    http = srv.http()
    r = http.post("/auth/register", json={"email": "dora@example.com", "password": "dorapass1"})
    assert r.status_code == 201, r.text
    user = r.json()
    assert set(user) == USER_KEYS, user
    assert user["email"] == "dora@example.com"
    assert (user["is_active"], user["is_superuser"], user["is_verified"]) == (True, False, False)
    assert srv.db_users()["dora@example.com"]["id"] == user["id"]

    r = login(http, "dora@example.com", "dorapass1")
    assert r.status_code == 204, r.text
    assert r.content == b""
    name, token, attrs = cookie_attributes(r.headers["set-cookie"])
    assert name == "c2subauth" and token
    assert "httponly" in attrs and attrs.get("path") == "/" and attrs.get("samesite", "").lower() == "lax"
    assert http.cookies.get("c2subauth") == token

    # the jar's cookie is a session: @personal, writes, user listing
    assert http.get("/api/list/@personal").json() == []
    frame = blosc2.asarray(np.arange(12).reshape(3, 4)).to_cframe()
    r = http.post("/api/upload/@personal/mine.b2nd", files={"file": ("upload", io.BytesIO(frame))})
    assert r.status_code == 200 and r.json() == "@personal/mine.b2nd", r.text
    assert http.get("/api/info/@personal/mine.b2nd").json()["shape"] == [3, 4]
    assert http.get("/api/list/@personal").json() == ["mine.b2nd"]
    assert "dora@example.com" in [u["email"] for u in http.get("/api/listusers/").json()]

    r = http.post("/auth/jwt/logout")
    assert r.status_code == 204, r.text
    name, value, attrs = cookie_attributes(r.headers["set-cookie"])
    assert name == "c2subauth" and value in ("", '""')
    assert attrs.get("max-age") == "0" or "expires" in attrs
    assert "c2subauth" not in http.cookies
    assert http.get("/api/list/@personal").status_code == 401
    assert http.post("/auth/jwt/logout").status_code == 401

    # stateless tokens: the one from before the logout still opens the session
    old = srv.http(f"c2subauth={token}")
    assert old.get("/api/list/@personal").json() == ["mine.b2nd"]


def test_token_claims(srv):
    """The session cookie is a fastapi-users JWT: HS256, sub = user id, aud, 12 h."""
    import base64
    import time

    http = srv.http()
    r = login(http, "known@example.com", "knownpass1")
    token = http.cookies["c2subauth"]
    head, body, _sig = token.split(".")

    def decode(part):
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    assert decode(head)["alg"] == "HS256"
    claims = decode(body)
    assert claims["sub"] == srv.user_id("known@example.com")
    assert claims["aud"] == ["fastapi-users:auth"]
    assert abs(claims["exp"] - (time.time() + 43200)) < 120
    assert r.status_code == 204


def test_register_errors(srv):
    http = srv.http()
    r = http.post("/auth/register", json={"email": "known@example.com", "password": "whatever12"})
    assert r.status_code == 400 and r.json() == {"detail": "REGISTER_USER_ALREADY_EXISTS"}, r.text
    r = http.post("/auth/register", json={"email": "shorty@example.com", "password": "short"})
    assert r.status_code == 400, r.text
    assert r.json()["detail"]["code"] == "REGISTER_INVALID_PASSWORD"
    assert "8 characters" in r.json()["detail"]["reason"]
    r = http.post("/auth/register", json={"email": "not-an-email", "password": "longenough"})
    assert r.status_code == 422, r.text
    r = http.post("/auth/register", json={"email": "nopass@example.com"})
    assert r.status_code == 422, r.text
    # asking to be a superuser is ignored
    r = http.post("/auth/register", json={"email": "eve@example.com", "password": "evepassword",
                                          "is_superuser": True, "is_verified": True})
    assert r.status_code == 201, r.text
    assert r.json()["is_superuser"] is False and not srv.db_users()["eve@example.com"]["is_superuser"]
    assert not {"shorty@example.com", "not-an-email", "nopass@example.com"} & set(srv.db_users())


def test_login_errors(srv):
    http = srv.http()
    for email, pw in [("known@example.com", "wrongpass1"), ("nobody@example.com", "knownpass1"),
                      ("known@example.com", "")]:
        r = login(http, email, pw)
        if pw == "":
            assert r.status_code in (400, 422), r.text
        else:
            assert r.status_code == 400 and r.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}, (email, r.text)
        assert "set-cookie" not in r.headers
    r = http.post("/auth/jwt/login", json={"username": "known@example.com", "password": "knownpass1"})
    assert r.status_code == 422, r.text
    r = http.post("/auth/jwt/login", data={"username": "known@example.com"})
    assert r.status_code == 422, r.text
    # e-mail lookup ignores case
    r = login(http, "KNOWN@Example.COM", "knownpass1")
    assert r.status_code == 204, r.text


def test_official_client_login_failure(srv):
    import caterva2 as cat2

    with pytest.raises(httpx.HTTPStatusError) as exc:
        cat2.Client(srv.url, ("known@example.com", "wrongpass1"))
    assert exc.value.response.status_code == 400


def test_forgot_and_reset_password(srv):
    srv.add_user("forgetful@example.com", "oldpassword1", superuser=False)
    http = srv.http()

    start = srv.log_size()
    r = http.post("/auth/forgot-password", json={"email": "stranger@example.com"})
    assert r.status_code == 202 and r.json() is None, r.text
    assert srv.wait_log(RESET_LINK, timeout=1.0, start=start) is None, "no link for an unknown address"

    start = srv.log_size()
    r = http.post("/auth/forgot-password", json={"email": "forgetful@example.com"})
    assert r.status_code == 202 and r.json() is None, r.text
    m = srv.wait_log(RESET_LINK, start=start)
    assert m, f"no reset link in the server log:\n{srv.log_tail()}"
    token = m.group(1)

    r = http.post("/auth/reset-password", json={"token": token, "password": "short"})
    assert r.status_code == 400, r.text
    assert r.json()["detail"]["code"] == "RESET_PASSWORD_INVALID_PASSWORD"
    assert login(http, "forgetful@example.com", "oldpassword1").status_code == 204

    r = http.post("/auth/reset-password", json={"token": token, "password": "newpassword1"})
    assert r.status_code == 200 and r.json() is None, r.text
    assert login(http, "forgetful@example.com", "oldpassword1").status_code == 400
    assert login(http, "forgetful@example.com", "newpassword1").status_code == 204

    # the token was bound to the old password: it is spent
    r = http.post("/auth/reset-password", json={"token": token, "password": "thirdpassword"})
    assert r.status_code == 400 and r.json() == {"detail": "RESET_PASSWORD_BAD_TOKEN"}, r.text
    assert login(http, "forgetful@example.com", "newpassword1").status_code == 204


def test_bad_reset_tokens(srv):
    http = srv.http()
    session = login(http, "known@example.com", "knownpass1")
    assert session.status_code == 204
    session_token = http.cookies["c2subauth"]
    for token in ["garbage", "", "a.b.c", session_token]:
        r = http.post("/auth/reset-password", json={"token": token, "password": "hijacked123"})
        assert r.status_code == 400 and r.json() == {"detail": "RESET_PASSWORD_BAD_TOKEN"}, (token, r.text)
    r = http.post("/auth/reset-password", json={"password": "hijacked123"})
    assert r.status_code == 422, r.text
    assert login(http, "known@example.com", "hijacked123").status_code == 400
    assert login(http, "known@example.com", "knownpass1").status_code == 204


def test_register_is_off_unless_enabled(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("no-register"), settings={"register": False})
    try:
        r = s.http().post("/auth/register", json={"email": "x@example.com", "password": "xpassword1"})
        assert r.status_code in (404, 405), r.text
        assert "x@example.com" not in (s.db_users() if (s.statedir / "db.sqlite").exists() else {})
        # the rest of the auth routes are there
        assert s.http().post("/auth/jwt/login", data={"username": "x@example.com",
                                                      "password": "xpassword1"}).status_code == 400
    finally:
        s.close()
