"""Price lists, model prices, FX rates and the cost formula."""
