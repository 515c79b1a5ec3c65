"""OCI image model: media types, documents, Image/Layer values, layers, archives."""
