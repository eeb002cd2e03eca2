"""kinto-admin signs in through the OpenID Connect flow (/openid/<provider>/login and /token) in Debian's
Chromium, against the real provider of tests/idp.py. Ours only, on `single` (the browser is slow on 2 cores;
the flow itself runs on every target in test_identity_oidc.py).
"""

import os
import subprocess

import pytest

from conftest import PLUGINS
from harness import OUTPUT, REPO
from idp import deployments, idp, server  # noqa: F401 (fixtures)
from test_admin_ui import admin_assets, node_modules  # noqa: F401 (fixtures)
from test_identity_oidc import oidc_profile

pytestmark = pytest.mark.targets("single")


def admin_profile(idp):
    return {**PLUGINS, **oidc_profile(idp), "multiauth_policies": "idp account basicauth", "log_level": "info",
            "admin_assets_path": os.environ.get("KINTO_TEST_ADMIN_ASSETS", "")}


PROFILES = {"admin": admin_profile}


@pytest.mark.timeout(600)
def test_admin_signs_in_with_openid(server, idp, node_modules, admin_assets):  # noqa: F811
    if server.settings["admin_assets_path"] != admin_assets:
        server.settings["admin_assets_path"] = admin_assets
        server.restart()
    idp.redirect_uris = [server.url + "/openid/idp/token"]
    idp.restart()
    shot = OUTPUT / "admin-openid.png"
    run = subprocess.run(
        ["node", str(REPO / "tests/browser/admin_openid.cjs"), server.origin, "Idp", "olivia", "idp:olivia",
         str(shot)],
        env={**os.environ, "NODE_PATH": node_modules}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert shot.exists() and shot.stat().st_size > 10_000
