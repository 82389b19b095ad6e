"""Built-in named validation rules, registered through the register_rules hook."""
