"""Binance signatures match the published vectors byte for byte
(../shared/reference/vectors.md §1-3 and ../shared/corpus/signing/signing_cases.json)."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest

from exconn.errors import ConfigError
from exconn.venues.binance.signing import (
    encode_params,
    rest_payload,
    signed_query,
    ws_api_payload,
    ws_api_signed,
)
from exconn.venues.keys import Credentials, KeyKind

HMAC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
HMAC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def _vectors(reference: Path) -> str:
    return (reference / "vectors.md").read_text()


def _pem_blocks(text: str) -> list[str]:
    return re.findall(r"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----", text, re.S)


SIGNATURE = re.compile(r"[0-9a-f]{64}|[A-Za-z0-9+/]{40,}={0,2}")


def _table_rows(text: str, prefix: str) -> list[tuple[str, str]]:
    """(string signed, signature) from the vectors.md table rows whose id is prefix + digit:
    the signature is the first cell holding one; the string signed is in the cell before."""
    rows = []
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) < 4 or not re.fullmatch(prefix + r"\d", cells[1].strip()):
            continue
        for i, cell in enumerate(cells):
            ticks = re.findall(r"`([^`]*)`", cell)
            if i > 2 and ticks and SIGNATURE.fullmatch(ticks[0]):
                rows.append((re.findall(r"`([^`]*)`", cells[i - 1])[-1], ticks[0]))
                break
    return rows


def test_hmac_vectors_b1_to_b6(reference: Path) -> None:
    creds = Credentials(HMAC_KEY, secret=HMAC_SECRET)
    rows = [r for r in _table_rows(_vectors(reference), "B")]
    assert len(rows) == 6
    for payload, expected in rows:
        assert creds.sign(payload) == expected


def test_rsa_and_ed25519_vectors(reference: Path) -> None:
    text = _vectors(reference)
    rsa_pem, ed_pem = _pem_blocks(text)[:2]
    rsa = Credentials("k" * 64, private_key_pem=rsa_pem)
    ed = Credentials("k" * 64, private_key_pem=ed_pem)
    assert (rsa.kind, ed.kind) == (KeyKind.RSA, KeyKind.ED25519)
    r_rows, e_rows = _table_rows(text, "R"), _table_rows(text, "E")
    assert len(r_rows) == 2 and len(e_rows) == 2
    for payload, expected in r_rows:
        assert rsa.sign(payload) == expected
    for payload, expected in e_rows:
        assert ed.sign(payload) == expected


def _value(field: object) -> object:
    """Some case fields are JSON values, some are their Python repr."""
    if isinstance(field, str) and field[:1] in "[{":
        import ast

        return ast.literal_eval(field)
    return field


def _cases(corpus: Path) -> list[dict]:
    cases = json.loads((corpus / "signing" / "signing_cases.json").read_text())["cases"]
    return [
        c for c in cases if c["exchange"] == "binance" and c.get("secret") not in (None, "None")
    ]


def test_corpus_rest_cases_build_the_same_payload_and_signature(corpus: Path) -> None:
    checked = 0
    for case in _cases(corpus):
        if case["transport"] != "REST":
            continue
        creds = Credentials(case.get("api_key") or "k", secret=case["secret"])
        if "query_string" in case or "request_body" in case:
            payload = rest_payload(case.get("query_string", ""), case.get("request_body", ""))
        elif "params" in case:
            payload = encode_params(_value(case["params"]))
        else:
            payload = case["signature_payload"]
        # The published bytes sign to the published signature, whatever they are...
        assert creds.sign(case["signature_payload"]) == case["expected_signature"], case["id"]
        # ...and exconn builds the payload the request really sends. One USD-M docs example
        # signed a payload with a stray space; the corpus records the well-formed twin.
        wellformed = case.get("wellformed_signature_payload", case["signature_payload"])
        assert payload == wellformed, case["id"]
        if "wellformed_signature_payload" in case:
            expected = case["wellformed_expected_signature_computed_by_corpus_builder"]
            assert creds.sign(payload) == expected, case["id"]
        if "params" in case and "expected_signed_url" in case:
            query = signed_query(_value(case["params"]), creds)
            assert case["expected_signed_url"].endswith("?" + query), case["id"]
        checked += 1
    assert checked >= 6


def test_corpus_ws_api_cases(corpus: Path) -> None:
    checked = 0
    for case in _cases(corpus):
        if case["transport"] != "WebSocket API":
            continue
        request = _value(case["request"])
        params = {k: str(v) for k, v in request["params"].items() if k != "signature"}
        creds = Credentials(case["api_key"], secret=case["secret"])
        assert ws_api_payload(params) == case["signature_payload"], case["id"]
        assert ws_api_signed(params, creds)["signature"] == case["expected_signature"]
        checked += 1
    assert checked == 2


def test_one_changed_byte_changes_the_signature() -> None:
    creds = Credentials(HMAC_KEY, secret=HMAC_SECRET)
    assert creds.sign("timestamp=1578963600000") != creds.sign("timestamp=1578963600001")


def test_rsa_signature_is_percent_encoded_in_the_query(reference: Path) -> None:
    rsa = Credentials("k" * 64, private_key_pem=_pem_blocks(_vectors(reference))[0])
    query = signed_query([("timestamp", "1578963600000")], rsa)
    assert "+" not in query and "/" not in query.split("signature=")[1]
    assert query.endswith("%3D%3D")


def test_secrets_never_show() -> None:
    creds = Credentials(HMAC_KEY, secret=HMAC_SECRET)
    for text in (repr(creds), str(creds), f"{creds}"):
        assert HMAC_SECRET not in text and HMAC_KEY not in text
    with pytest.raises(TypeError):
        pickle.dumps(creds)
    with pytest.raises(ConfigError) as exc:
        Credentials("key", private_key_pem="-----BEGIN PRIVATE KEY-----\nnotakey\n-----END")
    assert "notakey" not in str(exc.value)
