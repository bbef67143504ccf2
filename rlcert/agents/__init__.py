"""ReenGAGE agents on Stable-Baselines3 (see the agents issue)."""
