"""Dataset schema, synthetic CXR data, converters and loading."""
