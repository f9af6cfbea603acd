"""One small module per model family: a `@dataclass` of hyperparameters and the `nn.Module` it builds."""
