"""Build the app's navigation from the header comments of the files in pages/.

A page file starts with comment lines such as

    # title: ROSE masks
    # icon: :material/grid_on:
    # section: Methods
    # order: 30

A file with no `title` is not a page and is skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PAGES_DIR = PROJECT_ROOT / "pages"
SECTION_ORDER = ("RobustLab", "Methods", "Robustness")
DEFAULT_SECTION = "More"
_HEADER_LINE = re.compile(r"^#\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class PageInfo:
    path: Path
    title: str
    icon: str | None
    section: str
    order: float


def read_header(path: Path) -> PageInfo | None:
    """The page's header fields, read from its leading comment lines; None when it has no title."""
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                if not line.startswith("#"):
                    break
                match = _HEADER_LINE.match(line.strip())
                if match:
                    fields.setdefault(match.group(1).lower(), match.group(2))
    except (OSError, UnicodeDecodeError):
        return None
    if not fields.get("title"):
        return None
    try:
        order = float(fields.get("order", "1000"))
    except ValueError:
        order = 1000.0
    return PageInfo(path=path, title=fields["title"], icon=fields.get("icon") or None,
                    section=fields.get("section") or DEFAULT_SECTION, order=order)


def discover(folder: Path = PAGES_DIR) -> dict[str, list[PageInfo]]:
    """Pages grouped by section: RobustLab, Methods, Robustness first, then other sections by name."""
    pages = [info for path in sorted(folder.glob("*.py")) if not path.name.startswith("_")
             if (info := read_header(path)) is not None]
    sections: dict[str, list[PageInfo]] = {}
    for info in pages:
        sections.setdefault(info.section, []).append(info)

    def rank(section: str) -> tuple[int, str]:
        return (SECTION_ORDER.index(section) if section in SECTION_ORDER else len(SECTION_ORDER), section)

    return {section: sorted(sections[section], key=lambda p: (p.order, p.title))
            for section in sorted(sections, key=rank)}
