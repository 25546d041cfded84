"""Record writers and readers, byte codecs, and the units (sizes, durations) of options."""
