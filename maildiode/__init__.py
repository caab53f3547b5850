"""maildiode: the command line (`cli`, `commands/`), the demo (`demo/`), and trials on one
machine (`trial/`). The top floor: it may import every other package; none imports it."""
