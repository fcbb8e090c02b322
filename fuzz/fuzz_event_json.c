/* libFuzzer target: the JSON event decoder. Any input must parse to a valid event whose
 * JSON form parses back, and is stable from then on; or be rejected with an error code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fdn/events.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fdn_event_t *ev = NULL;
    if (fdn_event_from_json(&ev, (const char *)data, size, NULL) != 0)
        return 0;
    char *js = NULL;
    if (fdn_event_to_json(ev, &js) == 0) {
        fdn_event_t *back = NULL;
        if (fdn_event_from_json(&back, js, strlen(js), NULL) != 0)
            abort();
        /* JSON data is normalised (compact) once; after that the form is stable */
        char *js2 = NULL;
        if (fdn_event_to_json(back, &js2) != 0 || strcmp(js, js2) != 0)
            abort();
        fdn_free(js2);
        fdn_event_free(back);
        fdn_free(js);
    }
    fdn_event_free(ev);
    return 0;
}
