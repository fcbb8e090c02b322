/* libFuzzer target: the binary event record decoder. Any input must decode to a valid
 * event that re-encodes and decodes to an equal event, or be rejected with an error code;
 * never crash or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>

#include <fdn/events.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fdn_event_t *ev = NULL;
    int rc = fdn_event_decode(&ev, data, size, NULL);
    if (rc != 0)
        return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fdn_event_encode(ev, FDN_EVENT_ENC_ZSTD, &buf, &len) == 0) {
        fdn_event_t *back = NULL;
        if (fdn_event_decode(&back, buf, len, NULL) != 0 || !fdn_event_equal(ev, back))
            abort();
        fdn_event_free(back);
        fdn_free(buf);
    }
    fdn_event_free(ev);
    return 0;
}
