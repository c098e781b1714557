"""The Train page: uploaded CSVs, the run form (data, model, method, budget) and the run it started."""
