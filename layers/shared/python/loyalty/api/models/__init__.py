"""Request and response models, one module per area, so each function builds only its own."""
