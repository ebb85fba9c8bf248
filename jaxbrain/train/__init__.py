"""Training: objectives, input pipelines, the loop and checkpoints."""
