"""`rpfleet demo`: the whole fleet on one machine, on the embedded default."""
