// An Ocre-style C app on wedge's messaging: `publisher TOPIC MESSAGE [COUNT]` publishes
// MESSAGE to TOPIC COUNT times (default 1) and prints `published COUNT`; a refused
// publish prints the error to stderr and exits with status 1.
//
// Built against the `wit-bindgen c` bindings for `wedge:edge/messaging-client` in gen/
// as a wasm32-wasi core module; `wedge build` (or `wedge run`) makes it a component.
// The bindings are generated, and regenerated after a WIT change, with wit-bindgen-cli
// 0.57.1 (`cargo install wit-bindgen-cli --version 0.57.1 --locked`), from this folder:
//   wit-bindgen c --no-object-file --world wedge:edge/messaging-client --out-dir gen ../../../../wit
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gen/messaging_client.h"

// wit-bindgen's bindings reference the object that carries their world; wedge embeds
// its own world instead, so none is linked.
void __component_type_object_force_link_messaging_client(void) {}

static const char *error_text(const wedge_edge_messaging_error_t *err) {
    switch (err->tag) {
    case WEDGE_EDGE_TYPES_ERROR_PERMISSION_DENIED: return "permission denied";
    case WEDGE_EDGE_TYPES_ERROR_INVALID_TOPIC: return "invalid topic";
    case WEDGE_EDGE_TYPES_ERROR_PAYLOAD_TOO_LARGE: return "payload too large";
    case WEDGE_EDGE_TYPES_ERROR_LIMIT_EXCEEDED: return "limit exceeded";
    default: return "error";
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: publisher TOPIC MESSAGE [COUNT]\n");
        return 2;
    }
    long count = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
    messaging_client_string_t topic;
    messaging_client_string_set(&topic, argv[1]);
    messaging_client_list_u8_t payload = {(uint8_t *)argv[2], strlen(argv[2])};
    for (long i = 0; i < count; i++) {
        wedge_edge_messaging_error_t err;
        if (!wedge_edge_messaging_publish(&topic, &payload,
                                          WEDGE_EDGE_TYPES_QOS_AT_LEAST_ONCE, &err)) {
            fprintf(stderr, "publish to %s failed: %s\n", argv[1], error_text(&err));
            wedge_edge_messaging_error_free(&err);
            return 1;
        }
    }
    printf("published %ld\n", count);
    return 0;
}
