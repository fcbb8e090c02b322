# Empty dependencies file for fdn_cli.
# This may be replaced when dependencies are built.
