"""Stage finetune_transfer: The MIT-BIH ResNet fine-tuned on PTB, saved as models/transfer_ptb.keras."""

from heartbeat.core.entry import run
from heartbeat.train.runner import run_training

if __name__ == "__main__":
    run("finetune_transfer", lambda: run_training("transfer_ptb"))
