"""One loader per corpus; every corpus ships inside an installed package, so training works offline."""
