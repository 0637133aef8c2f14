"""Amounts in Spanish words as Mexican invoices print them: "CIENTO DIECISÉIS PESOS 00/100 M.N."."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_UNITS = (
    "CERO", "UN", "DOS", "TRES", "CUATRO", "CINCO", "SEIS", "SIETE", "OCHO", "NUEVE",
    "DIEZ", "ONCE", "DOCE", "TRECE", "CATORCE", "QUINCE", "DIECISÉIS", "DIECISIETE",
    "DIECIOCHO", "DIECINUEVE", "VEINTE", "VEINTIÚN", "VEINTIDÓS", "VEINTITRÉS",
    "VEINTICUATRO", "VEINTICINCO", "VEINTISÉIS", "VEINTISIETE", "VEINTIOCHO", "VEINTINUEVE",
)  # fmt: skip
_TENS = ("", "", "", "TREINTA", "CUARENTA", "CINCUENTA", "SESENTA", "SETENTA", "OCHENTA",
         "NOVENTA")  # fmt: skip
_HUNDREDS = ("", "CIENTO", "DOSCIENTOS", "TRESCIENTOS", "CUATROCIENTOS", "QUINIENTOS",
             "SEISCIENTOS", "SETECIENTOS", "OCHOCIENTOS", "NOVECIENTOS")  # fmt: skip


def _below_thousand(n: int) -> str:
    """1..999, with the apocope "UN"/"VEINTIÚN" (the form before a noun: "UN PESO")."""
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        words.append("CIEN" if n == 100 else _HUNDREDS[hundreds])
    if rest:
        if rest < 30:
            words.append(_UNITS[rest])
        else:
            tens, units = divmod(rest, 10)
            words.append(_TENS[tens] + (f" Y {_UNITS[units]}" if units else ""))
    return " ".join(words)


def _below_million(n: int) -> str:
    thousands, rest = divmod(n, 1000)
    words = []
    if thousands:
        words.append("MIL" if thousands == 1 else f"{_below_thousand(thousands)} MIL")
    if rest:
        words.append(_below_thousand(rest))
    return " ".join(words)


def integer_in_words(n: int) -> str:
    """A non-negative integer in Spanish capitals, apocopated: 21 → "VEINTIÚN"."""
    if n < 0:
        raise ValueError("negative amount")
    if n == 0:
        return "CERO"
    words = []
    for power, singular, plural in ((10**12, "BILLÓN", "BILLONES"), (10**6, "MILLÓN", "MILLONES")):
        if n >= power:
            count, n = divmod(n, power)
            words.append(f"UN {singular}" if count == 1 else f"{_below_million(count)} {plural}")
    if n:
        words.append(_below_million(n))
    return " ".join(words)


def amount_in_words(amount: Decimal, currency: str = "MXN") -> str:
    """`amount` the way invoices spell it out.

    MXN: "UN PESO 00/100 M.N.", "MIL UN PESOS 00/100 M.N.", "UN MILLÓN DE PESOS 00/100 M.N."
    (SAT's c_Moneda spelling: "DE" after an exact million). Other currencies print their code:
    "CIEN USD 00/100".
    """
    amount = Decimal(amount).quantize(Decimal("0.01"), ROUND_HALF_UP)
    if amount < 0:
        raise ValueError("negative amount")
    integer = int(amount)
    cents = int((amount - integer) * 100)
    words = integer_in_words(integer)
    if currency != "MXN":
        return f"{words} {currency} {cents:02d}/100"
    if integer == 1:
        noun = "PESO"
    elif integer % 10**6 == 0 and integer:
        noun = "DE PESOS"
    else:
        noun = "PESOS"
    return f"{words} {noun} {cents:02d}/100 M.N."
