"""Sub-commands of the visim CLI; each module has add_parser(subparsers) and run(args)."""
