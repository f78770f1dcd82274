"""The scenario: schema, YAML with line numbers, loading, validation, --set overrides,
plausibility checks. Imports nothing else of siteopt.
"""
