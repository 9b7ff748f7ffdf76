"""Formal union elections (选举): rolls, secret ballots, the regulations ' counting rules, rounds."""
