"""The Home page: the quick start, whether this machine is ready, and the recent runs."""
