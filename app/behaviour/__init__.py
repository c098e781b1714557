"""The Behaviour page: choosing runs and a suite, running it, the results, failing cases, training on them."""
