"""The run store: run folders, their index (a cache), health, archives and exports; nothing else writes a run."""
