/*
 * ordering.c - who may go now: one record per key at a time (SPEC §6),
 * and at most `concurrency` deliveries per robot; when worker_robot_backlog
 * records wait for a robot and the oldest has waited worker_robot_wait_limit,
 * the robot is slow and its further records are postponed.
 *
 * Keys: the first job of a key holds it; later jobs of the same key queue
 * behind it in consumption order and start, one by one, as each holder
 * releases the key (when it finishes, or earlier: when its robot says
 * "ordered": false, or when it is handed to a retry topic — see job.c).
 * Keys are scoped by topic, so a retry topic's records never wait for the
 * inbound topic's. Robot slots: a FIFO of jobs waiting for any robot; a
 * released slot starts the oldest job waiting for that robot.
 */
#include <stdint.h>
#include <string.h>

#include "mailrobot/clock.h"

#include "worker.h"

int ordering_acquire(worker *w, job *j)
{
    job *holder = mr_strmap_get(&w->order_keys, j->order_key, j->order_key_len);

    if (holder == NULL) {
        if (mr_strmap_put(&w->order_keys, j->order_key, j->order_key_len, j, NULL) < 0)
            return 1; /* out of memory: run unordered rather than stall */
        j->holds_key = 1;
        return 1;
    }
    /* Append to the holder's queue. */
    while (holder->next_key_waiter != NULL)
        holder = holder->next_key_waiter;
    holder->next_key_waiter = j;
    return 0;
}

void ordering_release(worker *w, job *j)
{
    job *next;

    if (!j->holds_key)
        return;
    j->holds_key = 0;
    next = j->next_key_waiter;
    j->next_key_waiter = NULL;
    if (next == NULL) {
        mr_strmap_del(&w->order_keys, j->order_key, j->order_key_len);
        return;
    }
    mr_strmap_put(&w->order_keys, next->order_key, next->order_key_len, next, NULL);
    next->holds_key = 1;
    job_key_acquired(next);
}

static int64_t robot_limit(const worker *w, const job *j)
{
    return j->robot && j->robot->concurrency > 0 ? j->robot->concurrency
                                                 : w->cfg->worker_robot_concurrency;
}

static uintptr_t slots_used(worker *w, const char *robot)
{
    return (uintptr_t)mr_strmap_get(&w->robot_slots, robot, strlen(robot));
}

static void set_slots(worker *w, const char *robot, uintptr_t n)
{
    if (n == 0)
        mr_strmap_del(&w->robot_slots, robot, strlen(robot));
    else
        mr_strmap_put(&w->robot_slots, robot, strlen(robot), (void *)n, NULL);
}

int robot_slot_acquire(worker *w, job *j)
{
    uintptr_t used = slots_used(w, j->robot_name);
    int64_t waiting = 0, now = mr_monotonic_ms(), oldest = now;
    job **tail;

    if ((int64_t)used < robot_limit(w, j)) {
        set_slots(w, j->robot_name, used + 1);
        return 1;
    }
    for (tail = &w->waiting_robot; *tail != NULL; tail = &(*tail)->next_robot_waiter)
        if (strcmp((*tail)->robot_name, j->robot_name) == 0 && waiting++ == 0)
            oldest = (*tail)->waiting_since_ms;   /* FIFO: the first is the oldest */
    if (waiting >= w->cfg->worker_robot_backlog && now - oldest >= w->cfg->worker_robot_wait_limit
        && w->retry_topic_count > 0 && j->robot->ordered != MR_ORDER_STRICT)
        return -1;
    j->waiting_since_ms = now;
    *tail = j;
    j->next_robot_waiter = NULL;
    return 0;
}

void robot_slot_release(worker *w, job *j)
{
    job **link;

    set_slots(w, j->robot_name, slots_used(w, j->robot_name) - 1);
    for (link = &w->waiting_robot; *link != NULL; link = &(*link)->next_robot_waiter) {
        job *next = *link;

        if (strcmp(next->robot_name, j->robot_name) != 0)
            continue;
        *link = next->next_robot_waiter;
        next->next_robot_waiter = NULL;
        set_slots(w, next->robot_name, slots_used(w, next->robot_name) + 1);
        job_slot_acquired(next);
        return;
    }
}
