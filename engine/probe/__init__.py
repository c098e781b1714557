"""ODE stability probes of a trained model (the IM-BERT page's measurements)."""
