"""Market data: loaders, bar aggregation, the order book and indicators."""
