"""Training: one Accelerate loop for every stage and ablation, chosen by config."""
