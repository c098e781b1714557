"""The Corruption & recovery page: the grid form, a grid's progress and its results with their figures."""
