#include <stdio.h>
#include <string.h>
#include "gen/c_guest.h"

int main(void) {
    puts("c: start");
    c_guest_string_t pattern;
    c_guest_string_set(&pattern, "sensors/#");
    wedge_edge_messaging_own_subscription_t sub;
    wedge_edge_messaging_error_t err;
    if (!wedge_edge_messaging_subscribe(&pattern, &sub, &err)) {
        printf("c: subscribe failed, tag %d\n", err.tag);
        wedge_edge_messaging_error_free(&err);
        return 1;
    }

    puts("c: subscribed");
    c_guest_string_t topic;
    c_guest_string_set(&topic, "sensors/c/temp");
    const char *msg = "from C";
    c_guest_list_u8_t payload = { (uint8_t *)msg, strlen(msg) };
    if (!wedge_edge_messaging_publish(&topic, &payload, WEDGE_EDGE_TYPES_QOS_AT_LEAST_ONCE, &err)) {
        printf("c: publish failed, tag %d\n", err.tag);
        return 1;
    }

    wedge_edge_messaging_borrow_subscription_t b = wedge_edge_messaging_borrow_subscription(sub);
    wedge_edge_messaging_option_message_t got;
    if (wedge_edge_messaging_method_subscription_receive(b, 100, &got, &err) && got.is_some) {
        printf("c: received %.*s: %.*s\n", (int)got.val.topic.len, got.val.topic.ptr,
               (int)got.val.payload.len, got.val.payload.ptr);
        wedge_edge_messaging_option_message_free(&got);
    } else {
        printf("c: nothing received\n");
    }
    wedge_edge_messaging_subscription_drop_own(sub);
    return 0;
}
