file(REMOVE_RECURSE
  "libfdn.a"
)
