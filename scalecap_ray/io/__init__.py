"""Reading inputs, normalising images, writing outputs."""
