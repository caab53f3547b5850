"""maildiode: command line, configuration files, shared logging and audit."""
