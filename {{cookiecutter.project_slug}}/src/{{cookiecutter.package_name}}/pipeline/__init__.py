"""The DVC pipeline's stages and what only they use: pandas, scikit-learn, skl2onnx, MLflow."""
