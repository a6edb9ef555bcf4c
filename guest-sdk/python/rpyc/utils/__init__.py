"""RPyC's utilities, as far as a service module imports them."""
