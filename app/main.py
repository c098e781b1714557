"""RobustLab's entry point: `streamlit run app/main.py`.

Builds the navigation from the header comments of the files in pages/, marks runs whose worker died
as failed (once per process), and draws the sidebar footer.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from engine.paths import use_project_nltk_data  # noqa: E402

use_project_nltk_data()  # before any page imports textattack (it reads NLTK stopwords at import)
# a file the app serves itself: an emoji or :material/...: icon is fetched from the internet, so offline it fails
st.set_page_config(page_title="RobustLab", layout="wide", page_icon=str(ROOT / "assets" / "favicon.png"))

from app.shell import load_css, navigation_pages, sidebar_footer  # noqa: E402
from app.state import reconcile_once  # noqa: E402

reconcile_once()
load_css()
page = st.navigation(navigation_pages())
sidebar_footer()
page.run()
