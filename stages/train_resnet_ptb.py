"""Stage train_resnet_ptb: The paper's ResNet on PTB, saved as models/resnet_ptb.keras."""

from heartbeat.core.entry import run


def main() -> None:
    from heartbeat.train.stage import run_training  # imported under run(): TensorFlow's C++ log is filtered

    run_training("resnet_ptb")


if __name__ == "__main__":
    run("train_resnet_ptb", main)
