"""Property-based runs of schemathesis against the live API, from its own
/api/openapi.json, with a valid token: no 5xx, every response conforms to the document
(status, content type, headers, body schema), schema-violating requests are refused and
every authenticated route refuses requests without a valid token.

Every operation runs (the faucet and withdrawals are quick on anvil) except the event
stream, which never ends by design (tests/api/test_live.py covers it), and force-close and
exit, which would close the fuzzed wallet's channel (tests/api/test_force_close.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from app import api  # noqa: F401 - declares the routes
from app.openapi import paths

from .conftest import ApiWallet, create_wallet

UNFUZZED = ("/events", "/force-close", "/exit")
"""The event stream never ends by design (tests/api/test_live.py); force-close would close
the fuzzed wallet's channel for every operation after it (tests/api/test_force_close.py)."""
OPERATIONS = [(method, path) for method, path in paths() if not path.endswith(UNFUZZED)]
PAYING = ("/transfers", "/transfers/conditional", "/streams", "/oracle-payments")
"""Routes that pay a recipient: steered to a real one, so payments and streams happen."""
CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance,
          st_checks.content_type_conformance, st_checks.response_headers_conformance,
          st_checks.response_schema_conformance, st_checks.negative_data_rejection,
          st_checks.ignored_auth]
"""Every check but positive_data_acceptance: schema-valid requests are often refused for
good reasons the schema cannot express (a zero amount, more than the balance, a recipient
without a wallet, a transfer id that is not in the channel)."""


@pytest.fixture(scope="module")
def fuzzed(web_url: str) -> tuple[ApiWallet, ApiWallet, str]:
    """The wallet under test, a recipient that exists, and the test token's address."""
    wallet, recipient = create_wallet(web_url), create_wallet(web_url)
    (token,) = [a["address"] for a in wallet.get("")["assets"] if a["symbol"] != "ETH"]
    return wallet, recipient, token


@pytest.fixture(scope="module")
def schema(web_url: str, fuzzed: tuple[ApiWallet, ApiWallet, str]) -> Any:
    config = schemathesis.Config.from_dict(
        {"auth": {"openapi": {"bearer": {"bearer": fuzzed[0].token}}}})
    return schemathesis.openapi.from_url(f"{web_url}/api/openapi.json", config=config)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS,
                         ids=[f"{m} {p.removeprefix('/api/v1')}" for m, p in OPERATIONS])
def test_schemathesis_finds_nothing(schema: Any, web_url: str,
                                    fuzzed: tuple[ApiWallet, ApiWallet, str], method: str,
                                    path: str, mode: GenerationMode) -> None:
    wallet, recipient, token = fuzzed
    operation = schema[path][method]
    # the wallet in the path is the token's: random addresses would all stop at 403
    fixed = {"address": wallet.address} if "{address}" in path else None
    statuses: dict[int, int] = {}

    @settings(max_examples=25, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed),
           data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            # steer some valid requests to real assets and a real recipient, so payments,
            # streams, deposits, the faucet and withdrawals actually happen
            if "assetId" in case.body:
                case.body["assetId"] = data.draw(st.sampled_from(
                    ["ETH", token, case.body["assetId"]]))
            if "recipient" in case.body and path.endswith(PAYING):
                case.body["recipient"] = data.draw(st.sampled_from(
                    [recipient.address, case.body["recipient"]]))
        response = case.call_and_validate(base_url=web_url, checks=CHECKS)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    run()
    assert statuses and all(status < 500 for status in statuses)


def test_schemathesis_cli_coverage_phase(web_url: str, fuzzed: tuple[ApiWallet, ApiWallet, str],
                                         tmp_path: Path) -> None:
    """The CLI's deterministic phases: boundary values of every field, missing and wrong
    auth, methods the document does not list (405 with `Allow`), the documented examples."""
    wallet = fuzzed[0]
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.address" = "{wallet.address}"\n')
    st = Path(sys.executable).parent / "st"
    done = subprocess.run(
        [str(st), "--config-file", str(config), "run", f"{web_url}/api/openapi.json",
         "-H", f"Authorization: Bearer {wallet.token}", "--phases", "examples,coverage",
         "--exclude-checks", "positive_data_acceptance",
         "--exclude-path-regex", "/(events|force-close|exit)$",
         # a withdrawal waits for the node's countersignature: on a loaded machine that
         # can take longer than schemathesis's default 10 s
         "--request-timeout", "60",
         "--workers", "1", "--seed", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
