/*
 * reset_mail.c - starting a password reset and mailing its token
 * (directory.h: mr_dir_reset_send; docs/accounts.md). Shared by
 * `mailrobotctl account reset-start` and the admin API's
 * POST /accounts/{address}/reset.
 *
 * The reset mail goes onto <prefix>.outbound, where the worker's sender
 * delivers it like any robot's mail (docs/outbound.md): from
 * postmaster@<the account's domain> to the recovery address. If Kafka does
 * not acknowledge it, the token is withdrawn: a token nobody can receive
 * must not stay in force.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mailrobot/clock.h"
#include "mailrobot/kafka.h"
#include "mailrobot/mime_json.h"
#include "mailrobot/outbound.h"
#include "mailrobot/record.h"
#include "mailrobot/topics.h"

#include "directory_internal.h"

#define RESET_ROBOT "directory"

typedef struct publish_state {
    char error[256];
    int done;
} publish_state;

static void on_delivery(void *opaque, const char *error)
{
    publish_state *ps = opaque;

    ps->done = 1;
    if (error != NULL)
        snprintf(ps->error, sizeof ps->error, "%s", error);
}

/* The reset mail, onto <prefix>.outbound with the headers the worker's
 * sender reads (outbound.h). Returns 0, or -1 with err. */
static int send_reset_mail(const mr_config *cfg, mr_kafka_context *kafka, const char *account,
                           const char *recovery, const char *token, mr_err *err)
{
    const char *domain = dir_domain_of(account);
    char sender[MR_DIR_ADDRESS_MAX + 16], id[33], text[1024], until[40], topic[256];
    unsigned char raw[16];
    mr_mailbox from = {"Password reset", sender}, to = {NULL, recovery};
    mr_mail_content content = {.from = &from, .to = &to, .to_count = 1};
    mr_outbound_context octx = {.id = id, .robot = RESET_ROBOT, .recipient = sender,
                                .sender = "", .hostname = domain,
                                .size_limit = cfg->max_message_bytes};
    mr_outbound_mail mail;
    mr_header h[7];
    size_t n = 0;
    publish_state ps = {"", 0};
    mr_producer *producer;
    int rc;

    snprintf(sender, sizeof sender, "postmaster@%s", domain);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, sizeof id, raw, sizeof raw);
    mr_format_rfc3339(mr_wall_ms() + cfg->directory_reset_ttl, until, sizeof until);
    snprintf(text, sizeof text,
             "Someone, hopefully you, asked to reset the password of %s.\n\n"
             "To choose a new password, use this one-time token:\n\n    %s\n\n"
             "It is valid until %s and only once. If you did not ask for it,\n"
             "ignore this mail: the password stays as it is.\n",
             account, token, until);
    content.subject = "Password reset";
    content.text = text;
    mr_mime_init();
    rc = mr_outbound_send(&octx, 0, &content, &mail, err);
    sodium_memzero(text, sizeof text);
    if (rc < 0)
        return -1;
    h[n++] = (mr_header){MR_H_VERSION, "1", 1};
    h[n++] = (mr_header){MR_H_EFFECT_ID, mail.effect_id, strlen(mail.effect_id)};
    h[n++] = (mr_header){MR_H_KIND, mail.kind, strlen(mail.kind)};
    h[n++] = (mr_header){MR_H_ID, id, strlen(id)};
    h[n++] = (mr_header){MR_H_ROBOT, RESET_ROBOT, strlen(RESET_ROBOT)};
    h[n++] = (mr_header){MR_H_MAIL_FROM, mail.mail_from, strlen(mail.mail_from)};
    h[n++] = (mr_header){MR_H_RCPT_TO, mail.rcpt_to[0], strlen(mail.rcpt_to[0])};
    mr_topic_name(cfg, "outbound", topic, sizeof topic);
    producer = mr_producer_new(cfg, kafka, cfg->ingest_time_limit, on_delivery, err);
    rc = producer ? mr_producer_send(producer, topic, mail.effect_id, strlen(mail.effect_id),
                                     mail.message, mail.message_len, h, n, &ps, err) : -1;
    if (rc == 0)
        rc = mr_producer_wait(producer, cfg->ingest_time_limit, err);
    if (rc == 0 && ps.error[0])
        rc = mr_err_set(err, "Kafka refused the reset mail: %s", ps.error);
    if (producer != NULL)
        mr_producer_destroy(producer);
    sodium_memzero(mail.message, mail.message_len);
    mr_outbound_mail_free(&mail);
    return rc;
}

mr_dir_status mr_dir_reset_send(mr_dir *d, struct mr_kafka_context *kafka, const char *address,
                                char token[MR_DIR_TOKEN_SIZE],
                                char recovery[MR_DIR_ADDRESS_MAX + 1], mr_err *err)
{
    char parsed[MR_DIR_ADDRESS_MAX + 1];
    mr_dir_status st = mr_dir_address_parse("address", address, parsed, err);

    if (st == MR_DIR_OK)
        st = mr_dir_reset_start(d, parsed, token, recovery, err);
    if (st != MR_DIR_OK)
        return st;
    if (send_reset_mail(d->cfg, kafka, parsed, recovery, token, err) < 0) {
        mr_err why;
        char reason[MR_ERR_MAX];

        snprintf(reason, sizeof reason, "%s", err->msg);
        mr_dir_reset_cancel(d, token, &why);
        sodium_memzero(token, MR_DIR_TOKEN_SIZE);
        mr_err_set(err, "the reset mail could not be queued (the token was withdrawn): %s",
                   reason);
        return MR_DIR_UNAVAILABLE;
    }
    return MR_DIR_OK;
}
