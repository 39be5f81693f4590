"""Stage train_mlp: The MLP baseline on PTB, saved as models/mlp_ptb.keras."""

from heartbeat.core.entry import run
from heartbeat.train.runner import run_training

if __name__ == "__main__":
    run("train_mlp", lambda: run_training("mlp_ptb"))
