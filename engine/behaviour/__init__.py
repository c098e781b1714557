"""Behavioural tests in the manner of CheckList (Ribeiro et al., ACL 2020): minimum functionality (MFT),
invariance (INV) and directional (DIR) tests, written as data in a JSON suite file.

`spec` reads and checks a suite file, `perturb` holds the perturbations, `generate` turns a test into cases
(the same cases for the same suite and seed), `scoring` says which cases fail (by CheckList's rules, see
docs/methods.md), `runner` is the `behaviour` job kind that predicts them for a trained run and stores the results,
`compare` sums results over runs and seeds.
"""
