"""Stage train_resnet_mitbih: The paper's ResNet on MIT-BIH, saved as models/resnet_mitbih.keras."""

from heartbeat.core.entry import run


def main() -> None:
    from heartbeat.train.stage import run_training  # imported under run(): TensorFlow's C++ log is filtered

    run_training("resnet_mitbih")


if __name__ == "__main__":
    run("train_resnet_mitbih", main)
