from visim.cli import entry

entry()
