"""The Benchmark page: the suite form and overview, what to compare, the report's tabs and their figures."""
