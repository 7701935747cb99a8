/*
 * keys.h - the Redis key layout (version 1). Documented in docs/redis.md;
 * every key starts with the configured redis_prefix (default "mailrobot"),
 * written <p> below.
 *
 *   <p>:robot:<name>            string  the robot's JSON document as applied
 *   <p>:robots                  set     names of all robots
 *   <p>:robots:version          integer INCR'd by every robot apply/delete and
 *                                       route add/del; workers drop their
 *                                       caches when it changes
 *   <p>:route:<address>         string  robot name. <address> is one of
 *                                         local@domain   exact (lower-cased)
 *                                         @domain        catch-all for a domain
 *                                         *              the default robot
 *   <p>:routes                  set     every <address> that has a route
 *   <p>:done:<id>:<robot>       string  delivery confirmed: JSON {"at", "status"};
 *                                       expires after dedupe_ttl. <id> is mr.id,
 *                                       or mr.id + "/" + mr.replay for a replay
 *   <p>:sent:<effect id>        string  the relay confirmed (250) the mail of this
 *                                       effect (outbound.h): JSON {"at", "status"};
 *                                       never sent again; expires after dedupe_ttl
 *   <p>:state:<robot>:<key>     string  an exec robot's set_state action: its value;
 *                                       expires if the action gave ttl_seconds
 *   <p>:autoreply:<robot>:<sender>  string  an autoreply robot answered sender
 *                                       (lower-cased) at this time (ms); expires
 *                                       after the robot's period
 *
 * Routing (SPEC §6) for recipient local+ext@domain: route:local+ext@domain,
 * then route:local@domain (ext passed to the robot), then route:@domain, then
 * route:* — the first that exists wins.
 */
#ifndef MAILROBOT_KEYS_H
#define MAILROBOT_KEYS_H

#define MR_KEY_ROBOT "robot:"
#define MR_KEY_ROBOTS "robots"
#define MR_KEY_VERSION "robots:version"
#define MR_KEY_ROUTE "route:"
#define MR_KEY_ROUTES "routes"
#define MR_KEY_DONE "done:"
#define MR_KEY_SENT "sent:"
#define MR_KEY_STATE "state:"
#define MR_KEY_AUTOREPLY "autoreply:"
#define MR_ROUTE_DEFAULT "*"

#endif
