# Empty dependencies file for fdn_obj.
# This may be replaced when dependencies are built.
