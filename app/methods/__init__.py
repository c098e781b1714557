"""The method pages (ROSE, UEGR, Match-Tuning): choosing a run, reading its recorded artifacts, and each
method's figures and views."""
