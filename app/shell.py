"""The frame around every page: navigation from pages/ headers, the stylesheet, the sidebar footer."""
from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from app.nav import PROJECT_ROOT, discover
from app.state import active_counts, device_text

CSS_FILE = PROJECT_ROOT / "assets" / "style.css"


def navigation_pages() -> dict[str, list]:
    """st.Page objects grouped by section; Home (the first RobustLab page) is the default page."""
    sections: dict[str, list] = {}
    first = True
    for section, infos in discover().items():
        for info in infos:
            try:
                page = st.Page(str(info.path), title=info.title, icon=info.icon, default=first)
            except StreamlitAPIException:  # a bad icon in one header must not take the whole app down
                page = st.Page(str(info.path), title=info.title, default=first)
            sections.setdefault(section, []).append(page)
            first = False
    return sections


def load_css() -> None:
    if CSS_FILE.exists():
        st.html(f"<style>{CSS_FILE.read_text(encoding='utf-8')}</style>")


def sidebar_footer() -> None:
    """Device and job counts, so a glance at any page says what the machine is doing."""
    with st.sidebar:
        _footer()


@st.fragment(run_every=5)
def _footer() -> None:
    counts = active_counts()
    jobs = f"{counts['running']} running, {counts['queued']} queued"
    st.caption(f":material/memory: {device_text()}  \n:material/model_training: runs: {jobs}")
