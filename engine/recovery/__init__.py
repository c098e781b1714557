"""The corruption-then-recovery experiment (the "Healing Powers of BERT" study), one job per module.

- `grid`: what a grid is (`GridSpec`, `Cell`), its checked config, and the `recover` job that trains it;
- `metrics`: each cell run's recovery numbers (curve area, steps to 95 %, ratio) and their means over seeds;
- `analysis`: inside the models: per-layer CKA against the clean run and weight drift (artifact `recovery`);
- `views`: what a page reads about one grid (`load_grid`) and the aggregates its charts draw.
"""
