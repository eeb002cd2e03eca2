"""The accounts plugin (kinto-api.md §10.1): sign-up, bcrypt passwords, `account:` principals, administrators."""

import pytest

from api import Api, assert_error, uid

ADMIN_PASSWORD = "admin-pw"


def signup(server, name, password="pw"):
    r = Api(server).put(f"/accounts/{name}", json={"data": {"password": password}})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def admin(plugged):
    """The account `admin` (account_write_principals = account:admin), created once per server."""
    r = Api(plugged).put("/accounts/admin", json={"data": {"password": ADMIN_PASSWORD}})
    assert r.status_code in (201, 401), r.text  # 401: it exists already (an anonymous re-PUT)
    return Api(plugged, "admin", ADMIN_PASSWORD)


def test_signup_hashes_the_password(plugged):
    name = uid("u")
    body = signup(plugged, name, "secret")
    assert body["data"]["password"].startswith("$2b$12$") and "secret" not in body["data"]["password"]
    assert body["permissions"] == {"write": [f"account:{name}"]}
    assert "accounts" in Api(plugged).get("/").json()["capabilities"]


def test_login_gives_the_account_principal(plugged):
    name = uid("u")
    signup(plugged, name, "secret")
    me = Api(plugged, name, "secret").get("/").json()["user"]
    assert me["id"] == f"account:{name}"
    assert "system.Authenticated" in me["principals"]


def test_wrong_password_is_a_basicauth_user(plugged):
    name = uid("u")
    signup(plugged, name, "secret")
    me = Api(plugged, name, "wrong").get("/").json()["user"]
    assert me["id"].startswith("basicauth:")
    assert Api(plugged, name, "wrong").get("/accounts").json()["data"] == []


def test_password_change_takes_effect_at_once(plugged):
    name = uid("u")
    signup(plugged, name, "old")
    old = Api(plugged, name, "old")
    old.ok("PATCH", f"/accounts/{name}", json={"data": {"password": "new"}})
    assert old.get("/").json()["user"]["id"].startswith("basicauth:")
    assert Api(plugged, name, "new").get("/").json()["user"]["id"] == f"account:{name}"


def test_required_fields(plugged):
    anon = Api(plugged)
    err = assert_error(anon.put(f"/accounts/{uid('u')}", json={"data": {}}), 400, 107)
    assert err["details"][0]["name"] == "data.password"
    err = assert_error(anon.post("/accounts", json={"data": {"password": "x"}}), 400, 107)
    assert err["details"][0]["name"] == "data.id"
    name = uid("u")
    r = anon.post("/accounts", json={"data": {"id": name, "password": "x"}})
    assert r.status_code == 201 and r.json()["data"]["id"] == name


def test_users_see_and_write_only_their_own(plugged):
    a, b = uid("a"), uid("b")
    signup(plugged, a)
    signup(plugged, b)
    alice = Api(plugged, a, "pw")
    assert [o["id"] for o in alice.get("/accounts").json()["data"]] == [a]
    assert_error(alice.get(f"/accounts/{b}"), 403, 121)
    err = assert_error(alice.put(f"/accounts/{b}", json={"data": {"password": "x"}}), 400, 107)
    assert err["message"] == "data.id in body: Username and account ID do not match."
    assert_error(Api(plugged).put(f"/accounts/{a}", json={"data": {"password": "x"}}), 401, 104)
    assert_error(Api(plugged).get("/accounts"), 401)


def test_admin_manages_every_account(plugged, admin):
    name = uid("u")
    r = admin.put(f"/accounts/{name}", json={"data": {"password": "by-admin"}})
    assert r.status_code == 201 and r.json()["permissions"] == {"write": [f"account:{name}"]}
    assert admin.get(f"/accounts/{name}").status_code == 200
    assert Api(plugged, name, "by-admin").get("/").json()["user"]["id"] == f"account:{name}"
    assert admin.delete(f"/accounts/{name}").status_code == 200


def test_deleted_account_cannot_log_in_and_keeps_its_data(plugged):
    name = uid("u")
    signup(plugged, name)
    user = Api(plugged, name, "pw")
    bid = user.create_bucket()
    user.ok("DELETE", f"/accounts/{name}")
    assert user.get("/").json()["user"]["id"].startswith("basicauth:")
    signup(plugged, name)  # same name again: same principal, so the old bucket is theirs again
    assert Api(plugged, name, "pw").get(f"/buckets/{bid}").status_code == 200


def test_email_ids(plugged):
    name = f"{uid('u')}@example.com"
    signup(plugged, name, "pw")
    assert Api(plugged, name, "pw").get("/").json()["user"]["id"] == f"account:{name}"


def test_accounts_absent_without_plugin(api):
    assert_error(api.get("/accounts"), 404, 111)
