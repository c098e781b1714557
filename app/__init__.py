"""Streamlit glue shared by the pages: navigation, cached loaders, components, figure builders."""
