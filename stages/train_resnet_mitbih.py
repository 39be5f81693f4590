"""Stage train_resnet_mitbih: The paper's ResNet on MIT-BIH, saved as models/resnet_mitbih.keras."""

from heartbeat.core.entry import run
from heartbeat.train.runner import run_training

if __name__ == "__main__":
    run("train_resnet_mitbih", lambda: run_training("resnet_mitbih"))
