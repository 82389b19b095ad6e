"""Configuration: attrs schema, cattrs converter, named rules, loading."""
