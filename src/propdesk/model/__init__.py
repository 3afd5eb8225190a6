"""Model: the value types everything else speaks (contracts, ids, prices, money, ticks, bars, depth)."""
