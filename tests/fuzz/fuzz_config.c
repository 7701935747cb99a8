/*
 * fuzz_config.c - libFuzzer target: the configuration parser (config.h)
 * on arbitrary file contents. A load either succeeds with a sane config or
 * fails with a non-empty message; nothing leaks.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mailrobot/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_config cfg;
    mr_err err;

    err.msg[0] = '\0';
    if (mr_config_load_text(&cfg, "fuzz.conf", (const char *)data, size, NULL, &err) < 0) {
        assert(err.msg[0] != '\0');
        return 0;
    }
    assert(cfg.kafka_brokers[0] != '\0');
    assert(cfg.max_message_bytes >= 1024);
    assert(cfg.retry_delays.count >= 1 && cfg.retry_delays.count <= MR_MAX_RETRY_DELAYS);
    mr_config_free(&cfg);
    return 0;
}
