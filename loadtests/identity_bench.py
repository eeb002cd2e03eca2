"""The identity benchmark (`bench.py --identity-rounds N`, issue 17): server CPU per request of the storage.sync
mix signed in with Firefox Accounts JWT access tokens (verified locally against the provider's keys, then
cached) against the same mix with Basic auth, in alternating rounds on a fresh store each.

Goal: the JWT mix costs at most 10% more server CPU per request than Basic. The provider is the real one of the
identity tests (tools/idp, npm's oidc-provider; `tools/idp/setup` prints its node_modules). Writes
`<out>/identity.json`. Run it with the tests' venv (it reuses tests/idp.py):

    CARGO_TARGET_DIR=... KINTO_TEST_IDP_MODULES=$(tools/idp/setup) $VENV/bin/python loadtests/bench.py \\
        --identity-rounds 5 --duration 30
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import bench

sys.path.insert(0, str(bench.REPO / "tests"))
import idp as test_idp  # noqa: E402  (tests/ is not a package)


def run(args):
    modules = os.environ.get("KINTO_TEST_IDP_MODULES")
    if not modules:
        raise SystemExit("set KINTO_TEST_IDP_MODULES=$(tools/idp/setup)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    provider = test_idp.Idp(modules).start()
    try:
        tokens = out / "identity-tokens.txt"
        # One token per goose user: each signs in once, as a distinct person.
        tokens.write_text("\n".join(provider.jwt(f"load{i}") for i in range(args.users)) + "\n")
        modes = {
            "basic": ({}, {}),
            "jwt": ({"KINTO_MULTIAUTH_POLICIES": "fxa", "KINTO_FXA_OAUTH_OAUTH_URI": provider.url,
                     "KINTO_FXA_OAUTH_REQUIRED_SCOPE": test_idp.SYNC_SCOPE},
                    {"KINTO_LOAD_BEARER_TOKENS": str(tokens)}),
        }
        binary = Path(args.kinto).resolve() if args.kinto else bench.REL / "kinto"
        rounds = []
        for i in range(args.identity_rounds):
            # Alternate which goes first: a drift of the machine then falls on both alike.
            order = ["basic", "jwt"] if i % 2 == 0 else ["jwt", "basic"]
            one = {}
            for mode in order:
                server_env, load_env = modes[mode]
                data = Path(tempfile.mkdtemp(prefix=f"kinto-rs-identity-{mode}-"))
                proc = bench.start_ours(data, 8893, binary, {**args.settings, **server_env})
                try:
                    url = "http://127.0.0.1:8893"
                    bench.wait_up(url)
                    one[mode] = bench.measure(f"identity-{mode}-{i}", url, bench.Cpu(str(binary) + "$"),
                                              "storagesync", args.duration, args.users, out, env=load_env)
                finally:
                    proc.terminate()
                    proc.wait(30)
                    shutil.rmtree(data, ignore_errors=True)
            one["jwt_over_basic_cpu_per_request"] = round(
                one["jwt"]["server_cpu_ms_per_request"] / max(one["basic"]["server_cpu_ms_per_request"], 1e-9), 3)
            rounds.append(one)
            print(f"  round {i}: JWT/Basic server CPU per request {one['jwt_over_basic_cpu_per_request']}")
        ratios = [r["jwt_over_basic_cpu_per_request"] for r in rounds]
        summary = {"median_jwt_over_basic_cpu_per_request": statistics.median(ratios), "ratios": ratios,
                   "errors": {m: sum(r[m]["errors"] for r in rounds) for m in modes}}
        (out / "identity.json").write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
        print(json.dumps(summary, indent=2))
        return 0
    finally:
        provider.cleanup()
