"""Using a trained run: classify a video or skeleton file (:mod:`~skelact.inference.predictor`), export its network
to ONNX (:mod:`~skelact.inference.onnx_export`), map its test features (:mod:`~skelact.inference.features`).
Above the engine, whose builders rebuild a run's model from its config and checkpoint."""
