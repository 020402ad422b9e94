"""Money rules: Decimal only, currency precision, one rounding helper."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# ISO 4217 minor units of the currencies that differ from 2; every other code uses 2.
_MINOR_UNITS = {
    "BHD": 3,
    "CLP": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "TND": 3,
    "UGX": 0,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
}

# Known ISO 4217 codes; a typo such as "USd" or "EUR0" is rejected at the edge.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
    GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
    NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK
    SGD SHP SLE SOS SRD SSP STN SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES
    VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()
)

# A record's cost keeps this many places; rounding to the currency happens once per invoice line.
COST_PLACES = Decimal("1e-12")
DISPLAY_PLACES = Decimal("1e-10")
PER_MILLION = Decimal(1_000_000)


def currency_precision(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round an amount once, to the currency's minor unit, half-even."""
    return amount.quantize(Decimal(1).scaleb(-currency_precision(currency)), rounding=ROUND_HALF_EVEN)


def format_cost(amount: Decimal | None) -> str | None:
    """The API's string form of an unrounded cost: ten decimal places."""
    if amount is None:
        return None
    return format(amount.quantize(DISPLAY_PLACES, rounding=ROUND_HALF_EVEN), "f")


def is_currency(code) -> bool:
    return isinstance(code, str) and code in ISO_4217


def parse_decimal(value) -> Decimal:
    """A Decimal from a JSON string or number; floats go through their shortest repr."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(value if isinstance(value, str) else str(value))
    except (InvalidOperation, TypeError):
        raise ValueError("not a number") from None
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result
