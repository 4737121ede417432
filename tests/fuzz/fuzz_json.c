/*
 * fuzz_json.c - the strict JSON check alone, in both modes; whatever it accepts, cJSON must
 * parse (the check is meant to be stricter than cJSON, never looser).
 */
#include "fuzz_common.h"
#include "../../common/mp_common.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at;
    char why[128];
    for (int ints = 0; ints < 2; ints++) {
        if (!mp_json_check((const char *)data, size, ints, &at, why, sizeof why)) {
            if (at > size) abort();
            continue;
        }
        cJSON *root = cJSON_ParseWithLength((const char *)data, size);
        if (!root) abort();
        cJSON_Delete(root);
    }
    return 0;
}
