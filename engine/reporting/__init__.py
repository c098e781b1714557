"""From runs to verdicts: statistics, the benchmark report, each paper's claims, the AdvGLUE score, exports."""
