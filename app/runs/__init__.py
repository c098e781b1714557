"""The Runs page: the filtered table of every run, one run's details, and a comparison of several."""
