# Turns a file into a C header holding its bytes (cmake -DIN=file -DOUT=header -DNAME=symbol
# -P embed_file.cmake): `static const unsigned char NAME[]` (NUL-terminated) and
# `static const size_t NAME_len` (without the NUL). Used for the status page of the admin
# server (src/admin/status.html), so the page needs no build step and no file at run time.
file(READ "${IN}" _hex HEX)
string(LENGTH "${_hex}" _n2)
math(EXPR _n "${_n2} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
# 16 bytes a line
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " _bytes "${_bytes}")
get_filename_component(_src "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${_src} by cmake/embed_file.cmake at build time: do not edit. */\n"
  "static const unsigned char ${NAME}[] = {\n    ${_bytes}0x00};\n"
  "static const size_t ${NAME}_len = ${_n};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
