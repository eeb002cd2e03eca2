"""Test Pilot's flow with kinto.js (tests/clients/testpilot_scenario.cjs): two apps, as Notes and Send were,
each an OAuth client mapped to an app name (kinto-fxa's multi-client settings), so one person is a different
user in each; each app keeps client-side encrypted records in its `default` bucket, and one app's token cannot
read the other app's.

Ours only: per-app users need kinto-fxa, which is not installed with the reference.
"""

import pytest
import requests

from idp import fxa_settings
from idp import deployments, idp, server  # noqa: F401 (fixtures)
from node_clients import run_scenario

pytestmark = pytest.mark.targets("single", "split")


def apps_profile(idp):
    return fxa_settings(idp, fxa_oauth_clients_notes_client_id="app-a", fxa_oauth_clients_send_client_id="app-b")


PROFILES = {"apps": apps_profile}
CLIENTS = {"notes": "app-a", "send": "app-b"}
_reports = {}


@pytest.fixture
def run(server, idp, target):
    auth = {app: {"Authorization": f"Bearer {idp.jwt(f'pat-{target}', client=client)}"}
            for app, client in CLIENTS.items()}
    if target not in _reports:
        apps = {app: {"authorization": a["Authorization"], "secret": "5e" * 32} for app, a in auth.items()}
        _reports[target] = run_scenario("testpilot_scenario", {"remote": server.url, "apps": apps})
    return _reports[target], auth


def test_each_app_reads_back_its_own_encrypted_records(server, run):
    report, auth = run
    for app in CLIENTS:
        assert report["readBack"][app] == [{"id": f"{app}-1", "text": f"secret of {app}"}]
        stored = requests.get(f"{server.url}/buckets/default/collections/{app}/records", headers=auth[app],
                              timeout=30).json()["data"]
        assert [sorted(r) for r in stored] == [["IV", "ciphertext", "id", "last_modified"]]
        assert "secret" not in stored[0]["ciphertext"]


def test_one_app_cannot_read_the_other(server, run):
    report, auth = run
    # The same person has one default bucket per app.
    assert report["buckets"]["notes"] != report["buckets"]["send"]
    for mine, theirs in (("notes", "send"), ("send", "notes")):
        assert report["crossSync"][mine]["ok"] is False, report["crossSync"]
        assert report["crossSync"][mine]["status"] in (401, 403), report["crossSync"]
        url = f"{server.url}/buckets/{report['buckets'][theirs]}/collections/{theirs}/records/{theirs}-1"
        assert requests.get(url, headers=auth[mine], timeout=30).status_code in (403, 404)
        assert requests.get(url, headers=auth[theirs], timeout=30).status_code == 200
