# Empty compiler generated dependencies file for fdn_static.
# This may be replaced when dependencies are built.
