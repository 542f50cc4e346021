"""Every class of code point a patient (or a client) can send, for the tests that book and export them.

ACCEPTED: text the portal takes in every field a patient types and the export writes back exactly, in
UTF-8 and in windows-1251 (where that lacks a character, as a character reference). Each value starts
and ends with a letter: the portal trims white space, and Python counts NBSP and U+2028 as white space.

REFUSED: one character of each class the portal refuses in every such field (SPEC section 5, "control
characters"): the C0 controls, DEL, the C1 controls, and what XML 1.0 cannot carry at all (U+FFFE,
U+FFFF, lone surrogates). Tab, LF and CR are refused in one-line fields only (LINES_ALLOWED).
"""

from __future__ import annotations

ACCEPTED = {
    "ASCII with XML specials": 'O\'Brien-Smith & <Co> "quoted" ;:!?~',
    "Cyrillic": "Щукина Ёлка-Ъ ёжик",
    "CJK": "山田太郎 김철수 やまだ",
    "astral emoji": "A😷🩺👩\u200d⚕️𝔘𝔫𝔦Z",  # a ZWJ sequence and mathematical letters beyond the BMP
    "combining marks": "Zoe\u0308 И\u0306 a\u0301\u0302z",
    "RTL": "محمد עברית \u202eevil\u202c end",  # Arabic, Hebrew and a right-to-left override
    "zero-width": "a\u200bb\u200cc\u200dd\ufeffe\u2060f",
    "NBSP and other spaces": "Анна\u00a0Мария\u202fX\u2028Y\u2029Z\u3000W",
    "boundaries": "a\u007e\u00a0\ud7ff\ue000\ufdd0\ufffd\U0001fffe\U0010ffffz",  # the edges of what is refused
}

# The characters windows-1251 lacks in ACCEPTED, with the character reference lxml writes for each.
NOT_IN_CP1251 = {
    "😷": b"&#128567;",
    "山": b"&#23665;",
    "\u0308": b"&#776;",
    "\u202e": b"&#8238;",
    "\U0010ffff": b"&#1114111;",
}

REFUSED = {
    "NUL": "\x00",
    "C0 U+0001": "\x01",
    "C0 U+001F": "\x1f",
    "tab": "\t",
    "LF": "\n",
    "CR": "\r",
    "DEL": "\x7f",
    "C1 U+0080": "\x80",
    "C1 NEL U+0085": "\x85",
    "C1 U+009F": "\x9f",
    "U+FFFE": "\ufffe",
    "U+FFFF": "\uffff",
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
}

# Free text (typed in a text box) may break lines and hold tabs; every other field is one line.
LINES_ALLOWED = {"tab", "LF", "CR"}
FREE_TEXT_FIELDS = ("aim", "comment")
# The fields a patient types in which any text goes (phone and email have shapes of their own).
FREE_FORM_FIELDS = ("user_id", "user_name", "name1", "name2", "name3", "aim", "city", "address", "comment")


def patient_fields(text: str) -> dict[str, str]:
    """A booking's patient fields with `text` in every free-form one, and line breaks and tabs in free text."""
    fields = {name: text for name in FREE_FORM_FIELDS}
    fields["aim"] = f"{text}\n{text}"
    fields["comment"] = f"{text}\r\n{text}\t{text}"
    return {**fields, "phone": "+7 (912) 345-67-89", "email": "patient@example.org"}
