"""The method's text logic: sentence splitting, instruction parsing, scoring.  Pure
Python, no models: stages call these on model outputs."""
