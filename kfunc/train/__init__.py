"""Training: losses, metrics, optimizers, the compiled step and the fit/evaluate loop."""
