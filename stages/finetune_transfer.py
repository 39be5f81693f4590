"""Stage finetune_transfer: The MIT-BIH ResNet fine-tuned on PTB, saved as models/transfer_ptb.keras."""

from heartbeat.core.entry import run


def main() -> None:
    from heartbeat.train.stage import run_training  # imported under run(): TensorFlow's C++ log is filtered

    run_training("transfer_ptb")


if __name__ == "__main__":
    run("finetune_transfer", main)
