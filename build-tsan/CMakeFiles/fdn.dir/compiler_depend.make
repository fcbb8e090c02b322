# Empty compiler generated dependencies file for fdn.
# This may be replaced when dependencies are built.
