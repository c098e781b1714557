"""The ODE stability page: the test equation, probes of trained runs, live sentences, and their figures."""
