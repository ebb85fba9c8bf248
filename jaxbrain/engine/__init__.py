"""The sweep engine: batched scoring, the results store, layer commitment and model cards."""
