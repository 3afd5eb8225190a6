"""Risk: the rules (R1-R16), the pre-trade gate, the account guard and its enforcement, the trading calendar."""
