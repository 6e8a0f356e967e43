"""rnnbench: train and compare recurrent-network variants, tracked in MLflow."""
