"""Example genlight plug-in: a VAE subclass registered through the ``genlight.models`` entry point."""
