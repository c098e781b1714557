"""Models: loading (pretrained or a trained run's safetensors), a model folder's checks, devices, batched inference."""
