"""Pipeline stages: plain classes used with Ray Data `map_batches`, one module each."""
