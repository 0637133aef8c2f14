"""The SRI clave de acceso: published examples, its parts, and its check digit's properties."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.sri import access_key
from webapp.sri.access_key import InvalidAccessKey

pytestmark = pytest.mark.run_once  # the same on both databases: run once

# An authorised production factura (numeroAutorizacion = claveAcceso) published in an SRI
# autorización answer, repository aftelenchana/wspcompu, controladores/visor.php:
# 03/12/2022, factura, RUC 0190072002001, producción, serie 002-902, secuencial 000487498,
# código numérico 57662972, emisión normal, check digit 6.
PUBLISHED = "0312202201019007200200120029020004874985766297216"


def test_a_published_key_is_valid_and_parses_into_its_parts():
    key = access_key.parse(PUBLISHED)
    assert key.fecha == date(2022, 12, 3)
    assert key.cod_doc == "01"
    assert key.ruc == "0190072002001"
    assert key.ambiente == access_key.PRODUCCION
    assert (key.estab, key.pto_emi, key.secuencial) == ("002", "902", "000487498")
    assert key.numero == "002-902-000487498"
    assert key.codigo_numerico == "57662972"
    assert key.tipo_emision == "1"
    assert str(key) == PUBLISHED
    assert access_key.is_valid(PUBLISHED)


def test_build_reproduces_the_published_key():
    assert (
        access_key.build(
            fecha=date(2022, 12, 3),
            ruc="0190072002001",
            ambiente="2",
            estab=2,
            pto_emi=902,
            secuencial=487498,
            codigo_numerico="57662972",
        )
        == PUBLISHED
    )


def test_check_digit_by_hand():
    # Weights 2, 3, 4, 5, 6, 7, 2, … from the right; r = 11 − sum mod 11.
    assert access_key.check_digit("0" * 47 + "1") == "9"  # 1×2 = 2 → r = 9
    assert access_key.check_digit("0" * 47 + "5") == "1"  # 5×2 = 10 → r = 1
    assert access_key.check_digit("0" * 47 + "6") == "1"  # 6×2 = 12 ≡ 1 → r = 10 → 1
    assert access_key.check_digit("0" * 48) == "0"  # sum 0 → r = 11 → 0
    assert access_key.check_digit("0" * 46 + "14") == "0"  # 1×3 + 4×2 = 11 → r = 11 → 0
    assert access_key.check_digit("0" * 42 + "1" + "0" * 5) == "4"  # weight 7: r = 4
    assert access_key.check_digit("0" * 41 + "1" + "0" * 6) == "9"  # weight 2 again


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (PUBLISHED[:-1], "48 dígitos"),
        (PUBLISHED + "0", "50 dígitos"),
        (PUBLISHED[:10] + "A" + PUBLISHED[11:], "solo puede tener dígitos"),
        ("", "solo puede tener dígitos"),
        (PUBLISHED[:-1] + "7", "dígito verificador"),
    ],
)
def test_malformed_keys_are_refused_with_the_reason(value, message):
    with pytest.raises(InvalidAccessKey, match=message):
        access_key.parse(value)
    assert not access_key.is_valid(value)


def _with_check_digit(digits48: str) -> str:
    return digits48 + access_key.check_digit(digits48)


def test_impossible_dates_and_unknown_codes_are_refused():
    body = PUBLISHED[:48]
    with pytest.raises(InvalidAccessKey, match="fecha"):
        access_key.parse(_with_check_digit("31022022" + body[8:]))
    with pytest.raises(InvalidAccessKey, match="tipo de comprobante"):
        access_key.parse(_with_check_digit(body[:8] + "99" + body[10:]))
    with pytest.raises(InvalidAccessKey, match="ambiente"):
        access_key.parse(_with_check_digit(body[:23] + "3" + body[24:]))
    with pytest.raises(InvalidAccessKey, match="tipo de emisión"):
        access_key.parse(_with_check_digit(body[:47] + "2"))


def test_build_refuses_parts_of_the_wrong_size():
    good = dict(
        fecha=date(2024, 5, 1),
        ruc="1792060346001",
        ambiente="1",
        estab="001",
        pto_emi="001",
        secuencial=1,
        codigo_numerico="12345678",
    )
    assert access_key.is_valid(access_key.build(**good))
    for name, bad in [
        ("ruc", "179206034600"),
        ("ruc", "1792060346"),
        ("estab", "01"),
        ("estab", 1000),
        ("secuencial", 10**9),
        ("secuencial", -1),
        ("codigo_numerico", "1234567"),
        ("ambiente", "3"),
    ]:
        with pytest.raises(InvalidAccessKey):
            access_key.build(**{**good, name: bad})


def test_new_codigo_numerico_is_eight_digits():
    codes = {access_key.new_codigo_numerico() for _ in range(50)}
    assert all(len(c) == 8 and c.isdigit() for c in codes)
    assert len(codes) > 1


parts = st.fixed_dictionaries(
    {
        "fecha": st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
        "ruc": st.from_regex(r"[0-9]{10}001", fullmatch=True),
        "ambiente": st.sampled_from(["1", "2"]),
        "estab": st.integers(1, 999),
        "pto_emi": st.integers(1, 999),
        "secuencial": st.integers(1, 10**9 - 1),
        "codigo_numerico": st.integers(0, 10**8 - 1),
        "cod_doc": st.sampled_from(["01", "03", "04", "05", "06", "07"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(parts)
def test_round_trip(p):
    key = access_key.build(**p)
    assert len(key) == 49 and key.isdigit()
    parsed = access_key.parse(key)
    assert parsed.fecha == p["fecha"]
    assert parsed.ruc == p["ruc"]
    assert parsed.ambiente == p["ambiente"]
    assert int(parsed.estab) == p["estab"] and int(parsed.pto_emi) == p["pto_emi"]
    assert int(parsed.secuencial) == p["secuencial"]
    assert int(parsed.codigo_numerico) == p["codigo_numerico"]
    assert parsed.cod_doc == p["cod_doc"]
    assert str(parsed) == key


def _r(digits48: str) -> int:
    return 11 - sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(digits48))) % 11


@settings(max_examples=300, deadline=None)
@given(parts, st.integers(0, 47), st.integers(1, 9))
def test_one_changed_digit_is_detected(p, position, delta):
    """A changed digit moves the weighted sum by (change × weight), never a multiple of 11
    (11 is prime; both factors are below it), so r always changes. The only blind spot is
    SRI's folding of r = 10 onto the digit 1, which r = 1 also gives: then, and only then,
    the changed key passes."""
    key = access_key.build(**p)
    changed = key[:position] + str((int(key[position]) + delta) % 10) + key[position + 1 :]
    assert _r(changed[:48]) != _r(key[:48])
    if access_key.is_valid(changed):
        assert {_r(changed[:48]), _r(key[:48])} == {1, 10}


@settings(max_examples=200, deadline=None)
@given(parts, st.integers(1, 9))
def test_a_changed_check_digit_is_detected(p, delta):
    key = access_key.build(**p)
    changed = key[:48] + str((int(key[48]) + delta) % 10)
    assert not access_key.is_valid(changed)
