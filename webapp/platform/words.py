"""An amount in words, in Spanish, as Mexican banks and invoices print it:
"MIL TRESCIENTOS CINCO PESOS 00/100 M.N.".

No installed package does it (satcfdi and python-stdnum have no such helper), so here it is:
units, tens with their irregular forms (DIECISÉIS, VEINTIÚN), hundreds (CIEN, CIENTO,
QUINIENTOS), MIL, MILLÓN/MILLONES (and MIL MILLONES). UNO shortens to UN before a noun
(UN PESO, VEINTIÚN MIL, UN MILLÓN); an exact number of millions takes DE (UN MILLÓN DE PESOS).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_UNITS = [
    "CERO", "UNO", "DOS", "TRES", "CUATRO", "CINCO", "SEIS", "SIETE", "OCHO", "NUEVE",
    "DIEZ", "ONCE", "DOCE", "TRECE", "CATORCE", "QUINCE", "DIECISÉIS", "DIECISIETE",
    "DIECIOCHO", "DIECINUEVE", "VEINTE", "VEINTIUNO", "VEINTIDÓS", "VEINTITRÉS",
    "VEINTICUATRO", "VEINTICINCO", "VEINTISÉIS", "VEINTISIETE", "VEINTIOCHO", "VEINTINUEVE",
]  # fmt: skip
_TENS = ["", "", "", "TREINTA", "CUARENTA", "CINCUENTA", "SESENTA", "SETENTA", "OCHENTA",
         "NOVENTA"]  # fmt: skip
_HUNDREDS = ["", "CIENTO", "DOSCIENTOS", "TRESCIENTOS", "CUATROCIENTOS", "QUINIENTOS",
             "SEISCIENTOS", "SETECIENTOS", "OCHOCIENTOS", "NOVECIENTOS"]  # fmt: skip

CENT = Decimal("0.01")


def _apocope(words: str) -> str:
    """UNO → UN, VEINTIUNO → VEINTIÚN (before a noun: PESOS, MIL, MILLONES)."""
    if words.endswith("VEINTIUNO"):
        return words[: -len("VEINTIUNO")] + "VEINTIÚN"
    if words.endswith("UNO"):
        return words[:-1]
    return words


def _below_thousand(n: int) -> str:
    if n < 30:
        return _UNITS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens] + (f" Y {_UNITS[unit]}" if unit else "")
    if n == 100:
        return "CIEN"
    hundreds, rest = divmod(n, 100)
    return _HUNDREDS[hundreds] + (f" {_below_thousand(rest)}" if rest else "")


def _below_million(n: int) -> str:
    thousands, rest = divmod(n, 1000)
    parts = []
    if thousands == 1:
        parts.append("MIL")
    elif thousands:
        parts.append(f"{_apocope(_below_thousand(thousands))} MIL")
    if rest or not thousands:
        parts.append(_below_thousand(rest))
    return " ".join(parts)


def number_in_words(n: int) -> str:
    """A whole number (0 ≤ n < 10¹²) in words: 1305 → "MIL TRESCIENTOS CINCO"."""
    if not 0 <= n < 10**12:
        raise ValueError("out of range")
    millions, rest = divmod(n, 10**6)
    if not millions:
        return _below_million(rest)
    head = "UN MILLÓN" if millions == 1 else f"{_apocope(_below_million(millions))} MILLONES"
    return head + (f" {_below_million(rest)}" if rest else "")


def amount_in_words(amount: Decimal, currency: str = "MXN") -> str:
    """`amount` (rounded to cents, half up) as banks print it: "MIL TRESCIENTOS CINCO PESOS
    00/100 M.N."; in dollars "... DÓLARES 00/100 USD"."""
    amount = Decimal(amount).quantize(CENT, ROUND_HALF_UP)
    if amount < 0:
        raise ValueError("negative amount")
    whole = int(amount)
    cents = int((amount - whole) * 100)
    singular, plural, suffix = (
        ("DÓLAR", "DÓLARES", "USD") if currency == "USD" else ("PESO", "PESOS", "M.N.")
    )
    words = _apocope(number_in_words(whole))
    if whole == 1:
        noun = singular
    elif whole >= 10**6 and whole % 10**6 == 0:
        noun = f"DE {plural}"
    else:
        noun = plural
    return f"{words} {noun} {cents:02d}/100 {suffix}"
