"""A user's CSV file as a header and rows, the way its author meant them.

Researchers' files come from pandas, Excel and web exports: UTF-8 with or without a byte-order mark, UTF-16,
Windows-1252; commas, semicolons or tabs; a lone carriage return inside a tweet that pandas writes unquoted.
Rows end at a line feed only (or at a carriage return in a file that has no line feed at all), so a lone \\r
stays in its text. Each row keeps the line it starts on, so a message can name the line to fix.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = ",;\t|"
# (byte-order mark, codec): UTF-32's marks begin with UTF-16's, so they are tried first
BYTE_ORDER_MARKS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
                    (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (with a byte-order mark)", "utf-16": "UTF-16",
                  "utf-16-le": "UTF-16 (little-endian, no byte-order mark)",
                  "utf-16-be": "UTF-16 (big-endian, no byte-order mark)", "utf-32": "UTF-32",
                  "cp1252": "Windows-1252 (Western European)", "latin-1": "Latin-1 (ISO-8859-1)"}
FALLBACKS = ("cp1252", "latin-1")   # tried in this order when the bytes are not UTF-8; latin-1 decodes anything


class CsvFormatError(ValueError):
    """The file is not a readable CSV; the message says what was found."""


@dataclass
class CsvTable:
    header: list[str]
    rows: list[list[str]]
    lines: list[int]      # the line of the file each row starts on (the header is line 1)


def read_table(path: str | Path) -> CsvTable:
    """Decode and parse a CSV file; raises CsvFormatError saying what was found when it cannot."""
    text = decode(Path(path).read_bytes())[0]
    if "\n" in text:
        text = text.replace("\r\n", "\n")       # a \r left now is inside a text, not a line end
    else:
        text = text.replace("\r", "\n")         # a file from an old Mac: \r is its line end
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        return CsvTable([], [], [])
    keep = _stand_in(text)                       # the csv module ends a row at any \r: hide them from it
    reader = csv.reader((line.replace("\r", keep) + "\n" for line in lines[header_at:]),
                        delimiter=_delimiter(lines[header_at]), strict=True)
    rows, starts = [], []
    start = header_at + 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append([cell.replace(keep, "\r") for cell in row])
                starts.append(start)
            start = header_at + reader.line_num + 1
    except csv.Error as err:
        raise CsvFormatError(f"line {start} is not valid CSV ({err}); a text that holds the delimiter or a "
                             f"double quote must be in double quotes, with its own quotes doubled") from None
    if not rows:
        return CsvTable([], [], [])
    return CsvTable(rows[0], rows[1:], starts[1:])


def file_encoding(path: str | Path) -> str:
    """The codec `read_table` decodes this file with."""
    return decode(Path(path).read_bytes())[1]


def encoding_note(codec: str) -> str | None:
    """What to tell the user when the codec was a guess (the file is not Unicode); None when it was not."""
    if codec not in FALLBACKS:
        return None
    return (f"the file is not UTF-8: it was read as {ENCODING_NAMES[codec]}. If accents or other letters look "
            f"wrong in the texts, save the file as CSV UTF-8 and use it again")


def decode(raw: bytes) -> tuple[str, str]:
    """The file's text and the codec it was decoded with: a byte-order mark's, else UTF-16 when every other byte
    is zero, else UTF-8, else Windows-1252 or Latin-1 (see encoding_note)."""
    if raw.startswith(b"PK\x03\x04"):
        raise CsvFormatError("this is an Excel workbook (.xlsx) or another zip archive, not a CSV; in Excel use "
                             "File > Save As > CSV UTF-8")
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise CsvFormatError("this is an Excel 97-2003 workbook (.xls), not a CSV; in Excel use "
                             "File > Save As > CSV UTF-8")
    for mark, codec in BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            return _strict(raw, codec), codec
    if b"\x00" in raw:
        codec = _utf16_without_mark(raw)
        if codec is None:
            raise CsvFormatError("the file holds zero bytes, so it is not a text CSV (a spreadsheet or another "
                                 "binary file?); save it as CSV UTF-8")
        return _strict(raw, codec), codec
    for codec in ("utf-8", *FALLBACKS):
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")


def _strict(raw: bytes, codec: str) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as err:
        raise CsvFormatError(f"the file looks like {ENCODING_NAMES[codec]} but byte {err.start} is not valid "
                             f"{ENCODING_NAMES[codec]}; save it as CSV UTF-8") from None


def _utf16_without_mark(raw: bytes) -> str | None:
    """utf-16-le or utf-16-be when the zero bytes of ASCII text sit at the odd or even offsets; else None."""
    sample = raw[:4096]
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    if odd > 0.4 * len(sample) / 2 and even == 0:
        return "utf-16-le"
    if even > 0.4 * len(sample) / 2 and odd == 0:
        return "utf-16-be"
    return None


def _delimiter(header: str) -> str:
    """The delimiter of the header line (comma, semicolon, tab or bar); a comma when it has none of them."""
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _stand_in(text: str) -> str:
    """A private-use character the text does not hold, to carry a lone \\r past the csv module."""
    return next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
