"""Countries a customer names ("Portugal", "the UK", "the States"), as ISO 3166 alpha-2 codes.

A fixed table, not a dependency: the names people say on the phone are few and stable, and a bank's fraud
system wants the code. Demonyms ("Portuguese") and cities are not countries and are not read. A handful of
names that are also everyday words or first names (Chad, Jordan, Turkey, China, Georgia…) count only when
written with a capital, so "turkey sandwich" is no trip.
"""

from __future__ import annotations

import re

# ISO 3166-1 alpha-2 code -> the name said back to the customer.
NAMES: dict[str, str] = {
    "AF": "Afghanistan", "AL": "Albania", "DZ": "Algeria", "AD": "Andorra", "AO": "Angola",
    "AG": "Antigua and Barbuda", "AR": "Argentina", "AM": "Armenia", "AU": "Australia", "AT": "Austria",
    "AZ": "Azerbaijan", "BS": "the Bahamas", "BH": "Bahrain", "BD": "Bangladesh", "BB": "Barbados",
    "BY": "Belarus", "BE": "Belgium", "BZ": "Belize", "BJ": "Benin", "BT": "Bhutan", "BO": "Bolivia",
    "BA": "Bosnia and Herzegovina", "BW": "Botswana", "BR": "Brazil", "BN": "Brunei", "BG": "Bulgaria",
    "BF": "Burkina Faso", "BI": "Burundi", "CV": "Cape Verde", "KH": "Cambodia", "CM": "Cameroon",
    "CA": "Canada", "CF": "the Central African Republic", "TD": "Chad", "CL": "Chile", "CN": "China",
    "CO": "Colombia", "KM": "Comoros", "CG": "the Congo", "CD": "the Democratic Republic of the Congo",
    "CR": "Costa Rica", "CI": "Côte d'Ivoire", "HR": "Croatia", "CU": "Cuba", "CY": "Cyprus",
    "CZ": "the Czech Republic", "DK": "Denmark", "DJ": "Djibouti", "DM": "Dominica",
    "DO": "the Dominican Republic", "EC": "Ecuador", "EG": "Egypt", "SV": "El Salvador",
    "GQ": "Equatorial Guinea", "ER": "Eritrea", "EE": "Estonia", "SZ": "Eswatini", "ET": "Ethiopia",
    "FJ": "Fiji", "FI": "Finland", "FR": "France", "GA": "Gabon", "GM": "the Gambia", "GE": "Georgia",
    "DE": "Germany", "GH": "Ghana", "GR": "Greece", "GD": "Grenada", "GT": "Guatemala", "GN": "Guinea",
    "GW": "Guinea-Bissau", "GY": "Guyana", "HT": "Haiti", "HN": "Honduras", "HK": "Hong Kong",
    "HU": "Hungary", "IS": "Iceland", "IN": "India", "ID": "Indonesia", "IR": "Iran", "IQ": "Iraq",
    "IE": "Ireland", "IL": "Israel", "IT": "Italy", "JM": "Jamaica", "JP": "Japan", "JO": "Jordan",
    "KZ": "Kazakhstan", "KE": "Kenya", "KI": "Kiribati", "KP": "North Korea", "KR": "South Korea",
    "XK": "Kosovo", "KW": "Kuwait", "KG": "Kyrgyzstan", "LA": "Laos", "LV": "Latvia", "LB": "Lebanon",
    "LS": "Lesotho", "LR": "Liberia", "LY": "Libya", "LI": "Liechtenstein", "LT": "Lithuania",
    "LU": "Luxembourg", "MO": "Macau", "MG": "Madagascar", "MW": "Malawi", "MY": "Malaysia",
    "MV": "the Maldives", "ML": "Mali", "MT": "Malta", "MH": "the Marshall Islands", "MR": "Mauritania",
    "MU": "Mauritius", "MX": "Mexico", "FM": "Micronesia", "MD": "Moldova", "MC": "Monaco", "MN": "Mongolia",
    "ME": "Montenegro", "MA": "Morocco", "MZ": "Mozambique", "MM": "Myanmar", "NA": "Namibia", "NR": "Nauru",
    "NP": "Nepal", "NL": "the Netherlands", "NZ": "New Zealand", "NI": "Nicaragua", "NE": "Niger",
    "NG": "Nigeria", "MK": "North Macedonia", "NO": "Norway", "OM": "Oman", "PK": "Pakistan", "PW": "Palau",
    "PS": "Palestine", "PA": "Panama", "PG": "Papua New Guinea", "PY": "Paraguay", "PE": "Peru",
    "PH": "the Philippines", "PL": "Poland", "PT": "Portugal", "PR": "Puerto Rico", "QA": "Qatar",
    "RO": "Romania", "RU": "Russia", "RW": "Rwanda", "KN": "Saint Kitts and Nevis", "LC": "Saint Lucia",
    "VC": "Saint Vincent and the Grenadines", "WS": "Samoa", "SM": "San Marino",
    "ST": "São Tomé and Príncipe", "SA": "Saudi Arabia", "SN": "Senegal", "RS": "Serbia",
    "SC": "the Seychelles", "SL": "Sierra Leone", "SG": "Singapore", "SK": "Slovakia", "SI": "Slovenia",
    "SB": "the Solomon Islands", "SO": "Somalia", "ZA": "South Africa", "SS": "South Sudan", "ES": "Spain",
    "LK": "Sri Lanka", "SD": "Sudan", "SR": "Suriname", "SE": "Sweden", "CH": "Switzerland", "SY": "Syria",
    "TW": "Taiwan", "TJ": "Tajikistan", "TZ": "Tanzania", "TH": "Thailand", "TL": "Timor-Leste", "TG": "Togo",
    "TO": "Tonga", "TT": "Trinidad and Tobago", "TN": "Tunisia", "TR": "Turkey", "TM": "Turkmenistan",
    "TV": "Tuvalu", "UG": "Uganda", "UA": "Ukraine", "AE": "the United Arab Emirates",
    "GB": "the United Kingdom", "US": "the United States", "UY": "Uruguay", "UZ": "Uzbekistan",
    "VU": "Vanuatu", "VA": "Vatican City", "VE": "Venezuela", "VN": "Vietnam", "YE": "Yemen", "ZM": "Zambia",
    "ZW": "Zimbabwe",
}  # fmt: skip

# Other ways people name a country. Written in lower case unless only the capitalised form is the country.
ALIASES: dict[str, str] = {
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB",
    "the states": "US", "usa": "US", "u.s.a.": "US", "u.s.": "US", "united states of america": "US",
    "america": "US",
    "holland": "NL", "czechia": "CZ", "ivory coast": "CI", "turkiye": "TR", "türkiye": "TR",
    "burma": "MM", "swaziland": "SZ", "east timor": "TL", "cabo verde": "CV", "vatican": "VA",
    "korea": "KR", "republic of korea": "KR", "uae": "AE", "emirates": "AE",
    "macao": "MO", "russian federation": "RU", "viet nam": "VN", "bosnia": "BA",
    "trinidad": "TT", "the drc": "CD", "drc": "CD",
}  # fmt: skip
# Said with a capital only: in lower case these are everyday words or first names.
CAPITALISED_ONLY = frozenset({"chad", "jordan", "turkey", "china", "georgia", "guinea", "niger", "togo", "us"})
# "The US" alone: "us" in lower case is a pronoun.
ALIASES["us"] = "US"


def _plain(name: str) -> str:
    return name[4:] if name.startswith("the ") else name


_BY_NAME: dict[str, str] = {_plain(name).lower(): code for code, name in NAMES.items()}
_BY_NAME.update(ALIASES)
# Longest first, so "South Sudan" is read before "Sudan" and "Papua New Guinea" before "Guinea".
_PATTERN = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(n) for n in sorted(_BY_NAME, key=len, reverse=True)) + r")(?![\w])",
    re.IGNORECASE,
)
# Continents and regions whose last word is a country name or alias: not that country.
_REGIONS = re.compile(r"\b(?:south|north|central|latin)\s+america\b", re.IGNORECASE)


def find_countries(text: str) -> list[str]:
    """The countries ``text`` names, as ISO 3166 alpha-2 codes, each once, in the order first named."""
    text = _REGIONS.sub(lambda m: " " * len(m[0]), text)
    found: list[str] = []
    for m in _PATTERN.finditer(text):
        said = m[1]
        key = said.lower()
        if key in CAPITALISED_ONLY and not said[0].isupper():
            continue
        if key == "us" and said != "US":
            continue
        code = _BY_NAME[key]
        if code not in found:
            found.append(code)
    return found


def country_name(code: str) -> str:
    """The name said back for an alpha-2 code ("PT" -> "Portugal"); the code itself when it is not one."""
    return NAMES.get(code.upper(), code)


def country_list(codes: list[str]) -> str:
    """Countries as a sentence says them: "Portugal", "Portugal and Spain", "Japan, South Korea and Taiwan"."""
    names = [country_name(c) for c in codes]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
