"""The domain core: plain Python, no AWS calls except through the narrow adapters passed in."""
