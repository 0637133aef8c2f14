"""webapp.fiscal: pure unit tests, no app nor database."""

from __future__ import annotations

import ast
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
import satcfdi

from webapp.fiscal import catalogs, matrix
from webapp.fiscal.problems import Problem
from webapp.fiscal.receptor import (
    NOMBRE_MAX_LENGTH,
    Receptor,
    check_receptor,
    company_suffix,
    normalize_nombre,
    normalize_receptor,
    strip_company_suffix,
)
from webapp.fiscal.rfc import GENERIC_RFCS, PersonType, check_rfc, normalize_rfc, person_type
from webapp.fiscal.ticket_input import normalize_number, parse_total
from webapp.fiscal.window import (
    DEFAULT_POLICY,
    WindowKind,
    WindowPolicy,
    in_window,
    parse_policy,
    serialize_policy,
    window_end,
)

MX = ZoneInfo("America/Mexico_City")

# --- RFC ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rfc", "person"),
    [
        ("EKU9003173C9", PersonType.MORAL),
        ("XOJI740919U48", PersonType.FISICA),
        ("CACX7605101P8", PersonType.FISICA),
    ],
)
def test_valid_rfcs(rfc, person):
    assert check_rfc(rfc) == (rfc, None)
    assert person_type(rfc) is person


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("eku9003173c9", "EKU9003173C9"),
        ("EKU-900317-3C9", "EKU9003173C9"),
        (" xoji 740919 u48 ", "XOJI740919U48"),
        ("CACX.760510.1P8", "CACX7605101P8"),
        ("CACX\u2013760510\u20131P8", "CACX7605101P8"),  # en dashes from a phone keyboard
    ],
)
def test_typed_rfc_is_normalised(typed, expected):
    assert check_rfc(typed) == (expected, None)


def test_normalize_keeps_enye_and_ampersand():
    assert normalize_rfc("ñañ-010101-aa1") == "ÑAÑ010101AA1"
    assert normalize_rfc("n\u0303an\u0303 010101") == "ÑAÑ010101"  # decomposed ñ
    assert normalize_rfc("ab&-010101") == "AB&010101"


def test_wrong_check_digit():
    assert check_rfc("EKU9003173C8") == ("EKU9003173C8", Problem.CHECK_DIGIT)
    assert check_rfc("XOJI740919U47")[1] is Problem.CHECK_DIGIT


@pytest.mark.parametrize("rfc", sorted(GENERIC_RFCS))
def test_generic_rfcs_are_refused(rfc):
    assert check_rfc(rfc.lower()) == (rfc, Problem.GENERIC)


@pytest.mark.parametrize("typed", ["", None, "  ", " - . "])
def test_empty_rfc(typed):
    assert check_rfc(typed)[1] is Problem.EMPTY


@pytest.mark.parametrize(
    "typed",
    [
        "EKU900317",  # too short
        "EKU9003173C9X1",  # too long
        "XOJI7409193",  # 11 chars
        "1KU9003173C9",  # digit in the name part
        "EKU9013173C9",  # month 13
        "XOJI740931U48",  # September 31
        "EKU9003173C!",
    ],
)
def test_rfc_format(typed):
    assert check_rfc(typed)[1] is Problem.FORMAT


def test_person_type_needs_12_or_13_chars():
    with pytest.raises(ValueError):
        person_type("EKU900317")


# --- Catalogs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xsd_enumerations() -> dict[str, list[str]]:
    """The CFDI 4.0 catalog enumerations of catCFDI.xsd as satcfdi ships it."""
    path = os.path.join(
        os.path.dirname(satcfdi.__file__),
        "transform/schemas/www.sat.gob.mx/sitio_internet/cfd/catalogos/catCFDI.xsd",
    )
    xs = "{http://www.w3.org/2001/XMLSchema}"
    wanted = {"c_FormaPago", "c_RegimenFiscal", "c_UsoCFDI"}
    found: dict[str, list[str]] = {}
    current = None
    # A file of the installed satcfdi package, not user input.
    for event, element in ElementTree.iterparse(path, events=("start", "end")):  # noqa: S314
        if event == "start" and element.tag == xs + "simpleType":
            current = element.get("name")
        elif event == "end" and element.tag == xs + "enumeration":
            if current in wanted:
                found.setdefault(current, []).append(element.get("value"))
            element.clear()
    return found


def test_catalogs_hold_the_cfdi40_codes(xsd_enumerations):
    assert list(catalogs.REGIMENES) == sorted(xsd_enumerations["c_RegimenFiscal"])
    assert list(catalogs.FORMAS_PAGO) == sorted(xsd_enumerations["c_FormaPago"])
    # P01 is in the XSD for CFDI 3.3, not in the CFDI 4.0 c_UsoCFDI sheet.
    assert set(catalogs.USOS_CFDI) == set(xsd_enumerations["c_UsoCFDI"]) - {"P01"}


def test_catalog_names():
    assert catalogs.regimen_name("601") == "General de Ley Personas Morales"
    assert catalogs.regimen_name("626") == "Régimen Simplificado de Confianza"
    assert catalogs.uso_name("G03") == "Gastos en general"
    assert catalogs.forma_pago_name("28") == "Tarjeta de débito"
    assert catalogs.regimen_name("999") is None
    assert catalogs.uso_name("P01") is None
    assert catalogs.forma_pago_name("98") is None
    assert catalogs.clave_unidad_name("H87") == "Pieza"
    assert catalogs.clave_prod_serv_name("01010101") == "No existe en el catálogo"
    assert catalogs.clave_prod_serv_name("nope") is None


def test_usos_in_sat_order():
    usos = list(catalogs.USOS_CFDI)
    assert usos[:3] == ["G01", "G02", "G03"]
    assert usos[-3:] == ["S01", "CP01", "CN01"]


@pytest.mark.parametrize(
    ("cp", "exists"),
    [
        ("06600", True),
        ("01000", True),
        ("44100", True),
        ("00000", False),  # SAT's placeholder row
        ("0660", False),
        ("066000", False),
        ("abcde", False),
        ("", False),
        ("\u0660\u0666\u0666\u0660\u0660", False),  # Arabic-Indic digits
    ],
)
def test_cp_exists(cp, exists):
    assert catalogs.cp_exists(cp) is exists


# --- Matrix ------------------------------------------------------------------------------


def test_matrix_spot_checks():
    assert not matrix.uso_allowed("G03", "605")
    assert matrix.uso_allowed("G02", "616")
    assert matrix.uso_allowed("S01", "616")
    assert not matrix.uso_allowed("G01", "616")
    assert matrix.usos_for("616") == ["G02", "S01", "CP01"]
    assert matrix.usos_for("605")[-1] == "CN01"
    assert matrix.uso_allowed("D01", "605")
    assert not matrix.uso_allowed("D01", "601")


def test_cn01_only_605():
    assert [r for r in matrix.RECEPTOR_REGIMENES if matrix.uso_allowed("CN01", r)] == ["605"]


def test_regimen_by_person_type():
    assert matrix.regimen_allowed("601", PersonType.MORAL)
    assert not matrix.regimen_allowed("601", PersonType.FISICA)
    assert matrix.regimen_allowed("626", PersonType.MORAL)
    assert matrix.regimen_allowed("626", PersonType.FISICA)
    assert matrix.regimen_allowed("605", PersonType.FISICA)
    assert not matrix.regimen_allowed("605", PersonType.MORAL)
    assert matrix.regimenes_for(PersonType.MORAL) == [
        "601", "603", "610", "620", "622", "623", "624", "626",
    ]  # fmt: skip


def test_every_receptor_regimen_has_a_uso_and_every_uso_a_regimen():
    for regimen in matrix.RECEPTOR_REGIMENES:
        assert matrix.usos_for(regimen), regimen
    assert list(matrix.REGIMENES_BY_USO) == list(catalogs.USOS_CFDI)
    assert matrix.RECEPTOR_REGIMENES | set(matrix.NON_RECEPTOR_REGIMENES) == set(catalogs.REGIMENES)
    assert matrix.usos_for("628") == []


# --- Receptor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nombre", "suffix"),
    [
        ("ESCUELA KEMPER URGATE SA DE CV", "SA DE CV"),
        ("ESCUELA KEMPER URGATE", None),
        ("ESCUELA KEMPER URGATE, S.A. DE C.V.", "S.A. DE C.V."),
        ("COMERCIAL DEL NORTE S. DE R.L. DE C.V.", "S. DE R.L. DE C.V."),
        ("DESPACHO PEREZ S.C.", "S.C."),
        ("INNOVA SAPI DE CV", "SAPI DE CV"),
        ("INNOVA S.A.P.I. DE C.V.", "S.A.P.I. DE C.V."),
        ("FUNDACION AYUDA A.C.", "A.C."),
        ("Fundación Ayuda, Asociación Civil", "Asociación Civil"),
        ("grupo sa de cv", "sa de cv"),
        ("SA DE CV", None),  # nothing left before it: not a suffix
        ("GRUPO ALSA", None),
        ("CASA DE CAMBIO", None),
    ],
)
def test_company_suffix(nombre, suffix):
    assert company_suffix(nombre) == suffix


def test_strip_company_suffix():
    assert strip_company_suffix("ESCUELA KEMPER URGATE, S.A. DE C.V.") == "ESCUELA KEMPER URGATE"
    assert strip_company_suffix("ESCUELA KEMPER URGATE") == "ESCUELA KEMPER URGATE"


def test_normalize_nombre():
    assert normalize_nombre("  josé   peña\tmuñoz ") == "JOSÉ PEÑA MUÑOZ"
    assert normalize_nombre(None) == ""


MORAL = Receptor("EKU9003173C9", "ESCUELA KEMPER URGATE", "06600", "601", "G03")
FISICA = Receptor("XOJI740919U48", "INGRID XODAR JIMENEZ", "44100", "612", "D01")


def test_valid_receptors():
    assert check_receptor(MORAL) == {}
    assert check_receptor(FISICA) == {}


def _with(base: Receptor, **changes) -> Receptor:
    return Receptor(**{**base.__dict__, **changes})


@pytest.mark.parametrize(
    ("base", "changes", "expected"),
    [
        (MORAL, {"rfc": ""}, {"rfc": Problem.EMPTY}),
        (MORAL, {"rfc": "XAXX010101000"}, {
            "rfc": Problem.GENERIC, "regimen": Problem.WRONG_PERSON_TYPE,
        }),
        (MORAL, {"nombre": "  "}, {"nombre": Problem.EMPTY}),
        (MORAL, {"nombre": "Escuela Kemper Urgate"}, {"nombre": Problem.NOT_UPPERCASE}),
        (MORAL, {"nombre": "ESCUELA KEMPER URGATE SA DE CV"}, {"nombre": Problem.HAS_SUFFIX}),
        (MORAL, {"nombre": "ESCUELA | KEMPER"}, {"nombre": Problem.FORMAT}),
        (MORAL, {"nombre": "X" * (NOMBRE_MAX_LENGTH + 1)}, {"nombre": Problem.TOO_LONG}),
        (MORAL, {"cp": ""}, {"cp": Problem.EMPTY}),
        (MORAL, {"cp": "0660"}, {"cp": Problem.FORMAT}),
        (MORAL, {"cp": "00000"}, {"cp": Problem.UNKNOWN}),
        (MORAL, {"regimen": ""}, {"regimen": Problem.EMPTY}),
        (MORAL, {"regimen": "999"}, {"regimen": Problem.UNKNOWN}),
        (MORAL, {"regimen": "628"}, {"regimen": Problem.NOT_FOR_RECEPTOR}),
        (MORAL, {"regimen": "605", "uso_cfdi": "CN01"}, {"regimen": Problem.WRONG_PERSON_TYPE}),
        (MORAL, {"uso_cfdi": ""}, {"uso_cfdi": Problem.EMPTY}),
        (MORAL, {"uso_cfdi": "P01"}, {"uso_cfdi": Problem.UNKNOWN}),
        (MORAL, {"uso_cfdi": "D01"}, {"uso_cfdi": Problem.NOT_FOR_REGIMEN}),
        (FISICA, {"regimen": "605", "uso_cfdi": "G03"}, {"uso_cfdi": Problem.NOT_FOR_REGIMEN}),
        (FISICA, {"regimen": "616", "uso_cfdi": "G01"}, {"uso_cfdi": Problem.NOT_FOR_REGIMEN}),
        (FISICA, {"regimen": "601"}, {"regimen": Problem.WRONG_PERSON_TYPE}),
        # A física may keep a name that looks like a company suffix.
        (FISICA, {"nombre": "INGRID XODAR SA"}, {}),
        # Wrong check digit: still judged as a moral for the other fields.
        (MORAL, {"rfc": "EKU9003173C8", "regimen": "605"}, {
            "rfc": Problem.CHECK_DIGIT, "regimen": Problem.WRONG_PERSON_TYPE,
        }),
        # Unknown person type: no suffix nor person-type verdict.
        (MORAL, {"rfc": "EKU", "nombre": "ACME SA DE CV", "regimen": "605", "uso_cfdi": "D01"}, {
            "rfc": Problem.FORMAT,
        }),
    ],
)  # fmt: skip
def test_receptor_problems(base, changes, expected):
    assert check_receptor(_with(base, **changes)) == expected


def test_normalize_receptor():
    typed = Receptor(" eku-9003173c9 ", " escuela  kemper urgate ", " 06600 ", "601 ", " G03")
    assert normalize_receptor(typed) == MORAL


def test_problem_values_are_stable():
    assert {p.name: p.value for p in Problem} == {
        "EMPTY": "empty",
        "FORMAT": "format",
        "CHECK_DIGIT": "check_digit",
        "GENERIC": "generic",
        "NOT_UPPERCASE": "not_uppercase",
        "HAS_SUFFIX": "has_suffix",
        "TOO_LONG": "too_long",
        "UNKNOWN": "unknown",
        "NOT_FOR_RECEPTOR": "not_for_receptor",
        "WRONG_PERSON_TYPE": "wrong_person_type",
        "NOT_FOR_REGIMEN": "not_for_regimen",
    }


# --- Ticket input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("12-34 O5", "123405"),
        ("l0I", "101"),
        ("#0012.34", "001234"),
        ("o|i", "011"),
        ("\uff11\uff12", "12"),  # full-width digits
        ("12A4", "12A4"),  # kept, for the caller to refuse
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_number(typed, expected):
    assert normalize_number(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1234.5", "1234.50"),
        ("1,234.50", "1234.50"),
        ("$1,234.50", "1234.50"),
        ("$ 1 234.50", "1234.50"),
        ("1234,50", "1234.50"),
        ("12,5", "12.50"),
        ("1,234", "1234.00"),
        ("1,234,567.8", "1234567.80"),
        ("0", "0.00"),
        ("  99 ", "99.00"),
        ("1.234", None),
        ("1.234,50", None),
        ("12,34,5", None),
        ("1.2.3", None),
        ("-3", None),
        ("+3", None),
        ("abc", None),
        ("1e3", None),
        ("", None),
        (None, None),
        ("$", None),
        ("1234567890123", None),  # beyond NUMERIC(14, 2)
    ],
)
def test_parse_total(typed, expected):
    total = parse_total(typed)
    if expected is None:
        assert total is None
    else:
        assert isinstance(total, Decimal)
        assert total == Decimal(expected)
        assert str(total) == expected


# --- Invoicing window --------------------------------------------------------------------


def local(*args) -> datetime:
    return datetime(*args, tzinfo=MX)


def test_sale_on_jan_31_late_night_is_january():
    sold_at = local(2025, 1, 31, 23, 30).astimezone(UTC)
    assert sold_at.day == 1 and sold_at.month == 2  # February in UTC
    same_month = WindowPolicy(WindowKind.SAME_MONTH, 0)
    assert window_end(sold_at, same_month) == local(2025, 2, 1)
    assert in_window(sold_at, local(2025, 1, 31, 23, 59).astimezone(UTC), same_month)
    assert not in_window(sold_at, local(2025, 2, 1, 1, 0).astimezone(UTC), same_month)


def test_until_day_next_month():
    sold_at = local(2025, 2, 14, 12, 0).astimezone(UTC)
    policy = parse_policy("until_day_next_month:3")
    assert policy == DEFAULT_POLICY
    assert in_window(sold_at, local(2025, 3, 3, 23, 59, 59).astimezone(UTC), policy)
    assert not in_window(sold_at, local(2025, 3, 4, 0, 0).astimezone(UTC), policy)
    # More days than the next month has: the whole next month.
    long = WindowPolicy(WindowKind.UNTIL_DAY_NEXT_MONTH, 31)
    assert window_end(local(2025, 1, 5), long) == local(2025, 3, 1)


def test_days_after():
    policy = parse_policy("days_after:30")
    sold_at = local(2025, 12, 10, 22, 0).astimezone(UTC)  # Dec 11 in UTC
    assert window_end(sold_at, policy) == local(2026, 1, 10)
    assert in_window(sold_at, local(2026, 1, 9, 23, 59).astimezone(UTC), policy)
    assert not in_window(sold_at, local(2026, 1, 10, 0, 0).astimezone(UTC), policy)
    same_day = WindowPolicy(WindowKind.DAYS_AFTER, 0)
    assert window_end(sold_at, same_day) == local(2025, 12, 11)


def test_window_end_is_aware_and_needs_aware_input():
    end = window_end(datetime(2025, 6, 15, tzinfo=UTC), DEFAULT_POLICY)
    assert end.utcoffset() == timedelta(hours=-6)
    with pytest.raises(ValueError):
        window_end(datetime(2025, 6, 15), DEFAULT_POLICY)
    with pytest.raises(ValueError):
        in_window(datetime(2025, 6, 15, tzinfo=UTC), datetime(2025, 6, 16), DEFAULT_POLICY)


@pytest.mark.parametrize("text", ["until_day_next_month:3", "same_month:0", "days_after:30"])
def test_policy_round_trip(text):
    assert serialize_policy(parse_policy(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "same_month",
        "same_month:1",
        "days_after:-1",
        "days_after:367",
        "days_after:3.5",
        "until_day_next_month:0",
        "until_day_next_month:32",
        "weekly:7",
        "SAME_MONTH:0",
        " same_month:0",
    ],
)
def test_bad_policies_are_refused(text):
    with pytest.raises(ValueError):
        parse_policy(text)


def test_policy_refuses_non_integer_days():
    with pytest.raises(ValueError):
        WindowPolicy(WindowKind.DAYS_AFTER, True)
    with pytest.raises(ValueError):
        WindowPolicy("monthly", 1)


def test_fiscal_package_imports_no_flask():
    package = os.path.join(os.path.dirname(catalogs.__file__))
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), encoding="utf-8") as source:
                tree = ast.parse(source.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                else:
                    continue
                assert not any(m.split(".")[0] in {"flask", "flask_babel"} for m in modules), name
