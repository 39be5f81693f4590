"""The preprocess stage: raw beats in, train/validation/test arrays out (splits, augmentation, the .npy contract)."""
