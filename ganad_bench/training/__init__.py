"""Training machinery shared by the deep models: device selection, seeding."""
