"""Stage train_resnet_ptb: The paper's ResNet on PTB, saved as models/resnet_ptb.keras."""

from heartbeat.core.entry import run
from heartbeat.train.runner import run_training

if __name__ == "__main__":
    run("train_resnet_ptb", lambda: run_training("resnet_ptb"))
