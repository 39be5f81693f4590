"""The networks: architectures, saving and loading them safely, and temperature calibration."""
