#!/usr/bin/env bash
# Run the pool examples to completion: each must exit 0 and print "ok".
# Examples are built as $FDN_BINARY_DIR/example_<name> (FDN_BUILD_EXAMPLES=ON).
set -u
bin="${FDN_BINARY_DIR:-.}"
status=0
for name in pool_mock_http pool_tcp; do
    exe="$bin/example_$name"
    if [ ! -x "$exe" ]; then
        echo "example_$name not built (FDN_BUILD_EXAMPLES=OFF?): skipped"
        continue
    fi
    out=$(timeout 60 "$exe" 2>&1)
    rc=$?
    echo "$out"
    if [ $rc -ne 0 ] || ! grep -qx ok <<<"$out"; then
        echo "example_$name FAILED (exit $rc)"
        status=1
    fi
done
exit $status
