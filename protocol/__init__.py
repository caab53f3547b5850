"""The wire between the zones: signed chunks, bundles, sequence numbers, transports. Nothing about mail."""
