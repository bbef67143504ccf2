"""ReenGAGE agents on Stable-Baselines3: drop-in subclasses of DDPG, TD3, SAC and DQN (same learn/predict/save/load).

``ALGOS`` maps the names accepted by training configs (``algo:`` key) to classes.
"""

from stable_baselines3 import DDPG, DQN, SAC, TD3

from rlcert.agents.dqn import ReenGAGEDQN
from rlcert.agents.sac import ReenGAGESAC
from rlcert.agents.td3 import ReenGAGEDDPG, ReenGAGETD3

ALGOS = {
    "DDPG": DDPG, "TD3": TD3, "SAC": SAC, "DQN": DQN,
    "ReenGAGEDDPG": ReenGAGEDDPG, "ReenGAGETD3": ReenGAGETD3, "ReenGAGESAC": ReenGAGESAC, "ReenGAGEDQN": ReenGAGEDQN,
}

__all__ = ["ALGOS", "ReenGAGEDDPG", "ReenGAGEDQN", "ReenGAGESAC", "ReenGAGETD3"]
