"""Explanations of one prediction: integrated gradients and the input gradient."""
