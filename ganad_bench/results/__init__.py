"""Result rows (atomic JSON per run), resume, published references and tables."""
