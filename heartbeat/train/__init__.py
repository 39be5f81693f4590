"""The training stages: the stage runner, the fit loop, its history, and where training runs."""
