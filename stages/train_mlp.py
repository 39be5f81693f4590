"""Stage train_mlp: The MLP baseline on PTB, saved as models/mlp_ptb.keras."""

from heartbeat.core.entry import run


def main() -> None:
    from heartbeat.train.stage import run_training  # imported under run(): TensorFlow's C++ log is filtered

    run_training("mlp_ptb")


if __name__ == "__main__":
    run("train_mlp", main)
