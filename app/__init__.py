"""Streamlit glue for the pages: the shared core here (navigation, cached loaders, components, live
polling, formatting, training-curve figures), and one package per page's feature."""
