"""What people read about a version: the model card, its sections, the training record and the artifacts' parts."""
