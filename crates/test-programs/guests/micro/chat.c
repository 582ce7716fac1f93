// A chat over wedge's messaging, one core module for microcontrollers and Linux alike
// (built against the `wit-bindgen c` bindings in ../c-edge/gen):
//   chat ME PEER COUNT        sends `ME N` to `chat/PEER` for N = 1..COUNT, each until
//                             an answer carrying N comes back on `chat/ME` (resent every
//                             100 ms, 50 times at most)
//   chat ME PEER COUNT echo   answers each message on `chat/ME` with `ME N`, N taken
//                             from it, until it has answered N = COUNT
// Each message received prints `ME got: PAYLOAD on TOPIC`. A refused call prints the
// error and exits with 1; no answer in time exits with 3. `chat self self 2` talks to
// itself (under `wedge run`, an app reaches its own subscriptions).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../c-edge/gen/messaging_client.h"

// The bindings reference the object that carries their world; none is linked (wedge
// embeds its own world on Linux, and the microcontroller needs none).
void __component_type_object_force_link_messaging_client(void) {}

static void fail(const char *what, wedge_edge_messaging_error_t *err) {
    static const char *kinds[] = {"permission denied", "invalid topic",
                                  "payload too large", "limit exceeded", "error"};
    const char *kind = err->tag <= 4 ? kinds[err->tag] : "error";
    if (err->tag <= 1 || err->tag == 4) {
        messaging_client_string_t *text = &err->val.permission_denied;
        printf("%s failed: %s: %.*s\n", what, kind, (int)text->len, (const char *)text->ptr);
    } else {
        printf("%s failed: %s\n", what, kind);
    }
    exit(1);
}

static void send(const char *topic, const char *me, long n) {
    char text[64];
    snprintf(text, sizeof text, "%s %ld", me, n);
    messaging_client_string_t t;
    messaging_client_string_set(&t, topic);
    messaging_client_list_u8_t payload = {(uint8_t *)text, strlen(text)};
    wedge_edge_messaging_error_t err;
    if (!wedge_edge_messaging_publish(&t, &payload, WEDGE_EDGE_TYPES_QOS_AT_LEAST_ONCE, &err))
        fail("publish", &err);
}

// Waits up to `timeout_ms` for a message on `inbox`; returns the number it carries,
// 0 on timeout.
static long next(wedge_edge_messaging_borrow_subscription_t inbox, const char *me, unsigned timeout_ms) {
    wedge_edge_messaging_option_message_t got;
    wedge_edge_messaging_error_t err;
    if (!wedge_edge_messaging_method_subscription_receive(inbox, timeout_ms, &got, &err))
        fail("receive", &err);
    if (!got.is_some)
        return 0;
    char text[64] = {0};
    size_t len = got.val.payload.len < sizeof text - 1 ? got.val.payload.len : sizeof text - 1;
    memcpy(text, got.val.payload.ptr, len);
    printf("%s got: %s on %.*s\n", me, text, (int)got.val.topic.len, (const char *)got.val.topic.ptr);
    const char *number = strrchr(text, ' ');
    long n = number ? strtol(number + 1, NULL, 10) : -1;
    wedge_edge_messaging_message_free(&got.val);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        printf("usage: chat ME PEER COUNT [echo]\n");
        return 2;
    }
    const char *me = argv[1];
    long count = strtol(argv[3], NULL, 10);
    int echo = argc > 4 && strcmp(argv[4], "echo") == 0;
    char inbox_topic[64], peer_topic[64];
    snprintf(inbox_topic, sizeof inbox_topic, "chat/%s", me);
    snprintf(peer_topic, sizeof peer_topic, "chat/%s", argv[2]);

    messaging_client_string_t filter;
    messaging_client_string_set(&filter, inbox_topic);
    wedge_edge_messaging_own_subscription_t inbox;
    wedge_edge_messaging_error_t err;
    if (!wedge_edge_messaging_subscribe(&filter, &inbox, &err))
        fail("subscribe", &err);
    wedge_edge_messaging_borrow_subscription_t borrowed = wedge_edge_messaging_borrow_subscription(inbox);

    if (echo) {
        for (long n = 0; n != count;) {
            n = next(borrowed, me, 10000);
            if (n == 0) {
                printf("%s: nothing came\n", me);
                return 3;
            }
            send(peer_topic, me, n);
        }
    } else {
        for (long n = 1; n <= count; n++) {
            long tries = 0, got = 0;
            while (got != n) {
                if (got == 0) {
                    if (tries++ == 50) {
                        printf("%s: no answer to %ld\n", me, n);
                        return 3;
                    }
                    send(peer_topic, me, n);
                }
                got = next(borrowed, me, 100);
            }
        }
    }
    wedge_edge_messaging_subscription_drop_own(inbox);
    printf("%s: done\n", me);
    return 0;
}
